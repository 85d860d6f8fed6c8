"""Runner overhead: `blogml train` steps/s ÷ a bare `model.fit` on the same model and data.

Target ≥ 0.97. Both sides run in this process, alternating, on the optbench MLP with the
same synthetic data, batch size and optimizer. Each side is timed for a short and a long
run and the steps/s is taken from the *difference*, so fixed costs (tracing, the data
adapter, the runner's final evaluation and plots) cancel, and what remains is the cost per
step and per epoch: for the runner that includes its per-step loss check and logging,
metrics.jsonl/TensorBoard lines and the checkpoint it writes every epoch. Prints one JSON
line with the median over repeats of each round's ratio.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CI", "true")  # no progress bars: time the work, not the terminal

from blogml.config.loader import LoadedConfig  # noqa: E402
from blogml.runners.building import build_runner  # noqa: E402
from blogml.runners.rundir import RunDir  # noqa: E402
from blogml.tasks.configs import check_config  # noqa: E402

SHORT_EPOCHS, LONG_EPOCHS = 2, 16
CONFIG = {
    "task": "optbench",
    "seed": 0,
    "data": {"num_train": 8192, "num_val": 1024, "num_test": 256, "num_features": 32,
             "num_classes": 10},
    "model": {"hidden_units": [256, 256]},
    "optimizer": {"name": "adam", "learning_rate": 1e-3},
    "train": {"batch_size": 64, "log_every": 50},
}


def resolved(epochs: int) -> dict:
    raw = json.loads(json.dumps(CONFIG))
    raw["train"]["epochs"] = epochs
    raw["train"]["eval_every"] = epochs * 8192 // 64  # validate once, at the end
    values, issues = check_config(raw, "runner_overhead")
    assert not issues, issues
    return values


def train_seconds(values: dict, root: Path) -> float:
    """Wall time of `runner.train()` for resolved config `values`, in a fresh run dir under
    `root` (setup excluded, everything the loop does included)."""
    run_dir = RunDir(tempfile.mkdtemp(dir=root))
    run_dir.create()
    runner = build_runner(LoadedConfig("benchmark", values), run_dir)
    start = time.perf_counter()
    result = runner.train()
    elapsed = time.perf_counter() - start
    assert result.status == "finished", result
    return elapsed


def time_runner(epochs: int, root: Path) -> float:
    return train_seconds(resolved(epochs), root)


def time_fit(epochs: int) -> float:
    import keras

    from blogml.data.synthetic import teacher_splits
    from blogml.models.mlp import build_mlp
    from blogml.optimizers import build_optimizer

    config = resolved(epochs)
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    data = config["data"]
    x, y = teacher_splits({"train": data["num_train"]}, data["num_features"],
                          data["num_classes"], data["label_noise"], 0)["train"]
    model = build_mlp(data["num_features"], data["num_classes"], config["model"]["hidden_units"])
    model.compile(optimizer=build_optimizer(config["optimizer"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    start = time.perf_counter()
    model.fit(x, y, batch_size=64, epochs=epochs, shuffle=True, verbose=0)
    return time.perf_counter() - start


def main(repeats: int = 5) -> None:
    steps = (LONG_EPOCHS - SHORT_EPOCHS) * 8192 // 64
    runner_rates, fit_rates = [], []
    with tempfile.TemporaryDirectory() as root:
        time_runner(1, Path(root))  # warm-up: imports, first traces
        time_fit(1)
        for _ in range(repeats):
            runner_rates.append(steps / (time_runner(LONG_EPOCHS, Path(root))
                                         - time_runner(SHORT_EPOCHS, Path(root))))
            fit_rates.append(steps / (time_fit(LONG_EPOCHS) - time_fit(SHORT_EPOCHS)))
    import keras

    # The median of each round's ratio: a round times both sides back to back, so a slow
    # spell of the machine slows both and cancels from their ratio.
    ratio = statistics.median(r / f for r, f in zip(runner_rates, fit_rates))
    print(json.dumps({
        "benchmark": "runner_overhead",
        "backend": keras.backend.backend(),
        "model": "optbench MLP 32-256-256-10, batch 64, adam",
        "runner_steps_per_sec": round(statistics.median(runner_rates), 1),
        "fit_steps_per_sec": round(statistics.median(fit_rates), 1),
        "ratio": round(ratio, 3),
        "target_ratio": 0.97,
        "meets_target": ratio >= 0.97,
        "repeats": repeats,
        "runner_all": [round(r, 1) for r in runner_rates],
        "fit_all": [round(r, 1) for r in fit_rates],
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
