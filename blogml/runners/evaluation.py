"""`blogml eval`: a run's metrics on a split with one of its checkpoints, kept in the run
directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from blogml.errors import BlogmlError
from blogml.runners.backend import select_backend
from blogml.runners.building import config_from_run_dir, restored_runner
from blogml.runners.rundir import RunDir, write_text_atomic
from blogml.tasks.registry import TASKS


def evaluate_run(run_dir: str, checkpoint: str, split: str) -> dict[str, Any]:
    """Metrics of `split` with a checkpoint's weights (the EMA ones when the run keeps
    an EMA for evaluation). `write_evaluation` keeps them in the run dir."""
    config = config_from_run_dir(run_dir)
    select_backend(config.values["backend"])  # the runner's module imports Keras
    task = config.task
    splits = TASKS[task].runner_class().splits
    if split not in splits:  # before the model is built and its checkpoint read
        raise BlogmlError(f"--split {split}: the splits of task {task} are "
                          + ", ".join(splits))
    runner, loaded = restored_runner(RunDir(run_dir), config, checkpoint)
    with runner.evaluation_weights():
        metrics = runner.evaluate(split)
    return {"split": split, "checkpoint": str(loaded.path),
            "step": loaded.meta["loop"]["step"], **metrics}


def write_evaluation(run_dir: str, result: dict[str, Any]) -> Path:
    """RUN_DIR/eval_<split>.json, written whole or not at all."""
    path = Path(run_dir) / f"eval_{result['split']}.json"
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    return path
