"""`blogml eval`: score a run's checkpoint on a split, print JSON, write eval_<split>.json."""

from __future__ import annotations

import json

import click


@click.command("eval")
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--split", default="val", show_default=True, help="Split to score.")
@click.option("--checkpoint", "checkpoint", default="best", show_default=True,
              metavar="best|last|PATH", help="Which weights: checkpoints/best, "
              "checkpoints/last, or a checkpoint folder or .h5 file.")
def evaluate(run_dir: str, split: str, checkpoint: str) -> None:
    """Evaluate the run in RUN_DIR and print its metrics as one JSON object (also kept as
    RUN_DIR/eval_<split>.json)."""
    from blogml.runners.evaluation import evaluate_run, write_evaluation

    result = evaluate_run(run_dir, checkpoint, split)
    click.echo(json.dumps(result))  # first: a run dir that cannot be written loses nothing
    write_evaluation(run_dir, result)
