"""`blogml eval`: score a run's checkpoint on a split, print JSON, write eval_<split>.json."""

from __future__ import annotations

import json
from pathlib import Path

import click

from blogml.errors import RunDirError


@click.command("eval")
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--split", default="val", show_default=True, help="Split to score.")
@click.option("--checkpoint", "checkpoint", default="best", show_default=True,
              metavar="best|last|PATH", help="Which weights: checkpoints/best, "
              "checkpoints/last, or a checkpoint folder or .h5 file.")
def evaluate(run_dir: str, split: str, checkpoint: str) -> None:
    """Evaluate the run in RUN_DIR and print its metrics as one JSON object."""
    from blogml.runners.launch import build_runner, config_from_run_dir
    from blogml.runners.rundir import RunDir

    run = RunDir(run_dir)
    if not run.is_run():
        raise RunDirError(f"{run_dir}: not a run directory (no config.yaml)")
    loaded = config_from_run_dir(run_dir)
    location = run.checkpoint(checkpoint) if checkpoint in ("best", "last") else Path(checkpoint)
    runner = build_runner(loaded, run)
    if split not in runner.splits:
        raise click.BadParameter(f"{split!r}: this task's splits are {', '.join(runner.splits)}",
                                 param_hint="--split")
    metrics = runner.evaluate_checkpoint(location, split)
    text = json.dumps(metrics, indent=None)
    (run.path / f"eval_{split}.json").write_text(json.dumps(metrics, indent=2) + "\n",
                                                 encoding="utf-8")
    click.echo(text)
