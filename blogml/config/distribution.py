"""The `distribution:` section (README: Running distributed): which engine spreads a step
over devices.

Each strategy is one backend's own engine, so a config that pairs it with another backend is
rejected before anything runs: `mirrored` and `multi_worker` are tf.distribute strategies,
`data_parallel` is keras.distribution.DataParallel, which Keras implements on JAX.
"""

from __future__ import annotations

from typing import Any

from blogml.config.optimizer import Tricks
from blogml.config.schema import Int, Issues, Section, Str, join

STRATEGY_BACKEND = {"mirrored": "tensorflow", "multi_worker": "tensorflow",
                    "data_parallel": "jax"}

DISTRIBUTION = Section({
    "strategy": Str("none", "none: one device; mirrored: tf.distribute.MirroredStrategy over "
                            "this machine's devices; multi_worker: "
                            "tf.distribute.MultiWorkerMirroredStrategy from $TF_CONFIG; "
                            "data_parallel: keras.distribution.DataParallel (JAX)",
                    choices=["none", *STRATEGY_BACKEND]),
    "devices": Int(None, "mirrored/data_parallel: replicas on the first N local devices (GPUs, "
                         "else CPUs); null: all of them", min=1),
    "timeout": Int(600, "multi_worker: seconds a collective waits for the other workers before "
                        "the run fails (a dead worker ends the run instead of hanging it)",
                   min=1),
}, "data-parallel training; `train.batch_size` stays the global batch")


def check_distribution(config: dict[str, Any], path: str, issues: Issues) -> None:
    """Cross-section rules of `distribution` (it needs the backend and jit settings)."""
    section = config["distribution"]
    strategy = section["strategy"]
    needed = STRATEGY_BACKEND.get(strategy)
    backend = config["backend"]
    if needed is not None and backend != needed:
        fitting = [s for s, b in STRATEGY_BACKEND.items() if b == backend] + ["none"]
        issues.add(join(path, "distribution.strategy"),
                   f"{strategy} needs backend: {needed} (got backend: {backend}); set backend: "
                   f"{needed}, or a strategy for {backend}: {' or '.join(fitting)}")
    if needed == "tensorflow" and config["train"]["jit_compile"] is True:
        issues.add(join(path, "train.jit_compile"),
                   f"true does not go with distribution.strategy: {strategy} (Keras runs "
                   "tf.distribute steps without XLA); set it to auto or false")
    optimizer = config.get("optimizer")
    if (needed == "tensorflow" and optimizer is not None and optimizer["name"] == "nadam"
            and Tricks.from_section(optimizer).any):
        # A replica step applies the base's update rule to each variable (its gradients are
        # already summed); Keras's Nadam advances its momentum-decay product once per step
        # outside that rule, so the product would stay at 1 (the loss is nan by step 2).
        issues.add(join(path, "optimizer.name"),
                   f"nadam with derived tricks does not go with distribution.strategy: "
                   f"{strategy} (Keras's Nadam advances its momentum schedule outside the "
                   "per-variable update a tf.distribute replica step applies); use name: adam, "
                   "drop the tricks, or set strategy: none")
    if section["devices"] is not None and strategy not in ("mirrored", "data_parallel"):
        issues.add(join(path, "distribution.devices"),
                   "is for strategy mirrored or data_parallel (multi_worker uses every local "
                   "device of each worker); remove it or change the strategy")

