"""Mixed precision (`train.mixed_precision`, README: Mixed precision): the Keras dtype
policy a run's model is built under, and what summary.json says about it.

A Keras layer takes the global dtype policy when it is constructed, and keeps it. So the
policy needs to be in force only while a runner builds its model: `policy_scope` sets it
for that and then puts back the previous one, so runs in one process (`blogml train a.yaml
b.yaml`, or a prior that builds its VQ-VAE inside its own setup) never inherit each other's
policy. Variables stay float32 under both mixed policies; layers compute in float16 or
bfloat16; the models keep their outputs (logits, reconstructions) and losses in float32.

Under `mixed_float16`, `model.compile` wraps the optimizer in Keras's `LossScaleOptimizer`
(dynamic loss scaling: a step whose gradients overflow is skipped and halves the scale).
It hands the unscaled gradients to the wrapped optimizer's `apply`, so every derived trick
still runs there; its variables (loss scale, steps since the last change) come first in
`optimizer.variables`, so checkpoints save and restore them with the rest.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import keras

log = logging.getLogger("blogml")

# train.mixed_precision -> Keras dtype policy (`true` is accepted for float16).
POLICIES: dict[Any, str] = {False: "float32", True: "mixed_float16",
                            "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def policy_name(setting: bool | str) -> str:
    """The Keras dtype policy of a `train.mixed_precision` value."""
    return POLICIES[setting]


def warn_of_float16_on_a_jax_cpu(name: str) -> None:
    """float16 under JAX on a CPU is slower than float32, and XLA:CPU cannot run a float16
    matmul with float32 accumulation, which Keras's attention uses when it has no dropout
    (the step fails with "precision 'F16_F16_F32' is not supported by dot_general")."""
    if (name == "mixed_float16" and keras.backend.backend() == "jax"
            and all(d.startswith("cpu") for d in keras.distribution.list_devices())):
        log.warning("train.mixed_precision: float16 on a CPU under JAX is slower than float32, "
                    "and attention without dropout fails there (XLA:CPU has no float16 "
                    "matmul with float32 accumulation); use false or bfloat16 on a CPU")


@contextlib.contextmanager
def policy_scope(name: str) -> Iterator[None]:
    """Layers created inside get the dtype policy `name`; the previous one is restored on exit."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def base_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer that makes the updates: the one a LossScaleOptimizer wraps, else itself
    (the derived optimizer's `evaluation_weights` lives there)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.inner_optimizer
    return optimizer


def report(model: keras.Model) -> dict[str, Any]:
    """summary.json's `precision`: the policy the model was built with and, under
    mixed_float16, the current loss scale (null otherwise)."""
    optimizer = model.optimizer
    scale = None
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        scale = float(keras.ops.convert_to_numpy(optimizer.dynamic_scale))
    return {"policy": model.dtype_policy.name, "loss_scale": scale}
