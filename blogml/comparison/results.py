"""results.csv: one row per run, read back from the run's own summary.json and metrics.jsonl.

Reading the runs' records (rather than keeping numbers in memory) is what lets a re-run
reuse finished runs and still write the same table.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from blogml.comparison.grid import Bench, Cell
from blogml.comparison.profiles import time_to_target
from blogml.config.keypaths import compact
from blogml.config.optimizer import CLIP_KEYS
from blogml.runners.events import as_number, read_events
from blogml.runners.rundir import RunDir, effective_status, write_text_atomic

COLUMNS = ["problem", "optimizer", "variant", "trial", "point", "seed", "base", "learning_rate",
           "tricks", "status", "steps", "final_loss", "best_loss", "metric", "final_metric",
           "best_metric", "target_loss", "steps_to_target", "target_metric", "target_value",
           "step_to_target", "seconds_to_target", "wall_seconds", "steps_per_sec", "run_dir"]


def series(run_dir: Path, metric: str) -> tuple[list[int], list[float], list[float]]:
    """(steps, values, wall seconds) of a metric in a run's record.

    `loss`, `accuracy`, ... are the logged training values (means over each logging window);
    `val_loss`, `val_accuracy`, ... the evaluations.
    """
    event, name = ("val", metric[4:]) if metric.startswith("val_") else ("train", metric)
    steps, values, times = [], [], []
    for record in read_events(RunDir(run_dir).metrics):
        value = as_number(record.get(name))
        if record.get("event") == event and value is not None:
            steps.append(record["step"])
            values.append(value)
            times.append(as_number(record.get("time")) or 0.0)
    return steps, values, times


def tricks(optimizer: dict[str, Any]) -> list[str]:
    """What an optimizer section turns on besides its base optimizer (in the order of
    README: Derived optimizers).

    No commas inside an item, so that results.csv stays easy to cut and grep.
    """
    on = [f"{key}={optimizer[key]:g}" for key in CLIP_KEYS if optimizer[key] is not None]
    if optimizer["schedule"] is not None:
        on.append("schedule")
    if optimizer["gradient_accumulation_steps"] > 1:
        on.append(f"gradient_accumulation_steps={optimizer['gradient_accumulation_steps']}")
    if optimizer["layer_adaptation"]:
        on.append("layer_adaptation")
    if optimizer["weight_decay"] > 0:
        on.append(f"weight_decay={optimizer['weight_decay']:g}")
    if optimizer["lazy"] is not None:
        on.append("lazy")
    if optimizer["lookahead"] is not None:
        look = optimizer["lookahead"]
        on.append(f"lookahead k={look['k']} alpha={look['alpha']:g}")
    if optimizer["ema"] is not None:
        on.append(f"ema momentum={optimizer['ema']['momentum']:g}")
    if optimizer["paramwise_lr"]:
        on.append("paramwise_lr")
    return on


def steps_to(steps: list[int], losses: list[float], target: float | None) -> int | None:
    """The first logged step whose loss is at or below `target`."""
    if target is None:
        return None
    return next((step for step, loss in zip(steps, losses) if loss <= target), None)


def target_of(problem: dict[str, Any]) -> tuple[str, float, str] | None:
    """A problem's (metric, value, mode) of time to target, or None without a target."""
    target = problem["target"]
    if target is None:
        return None
    train = problem["train"]
    mode = target["mode"] or (train["monitor_mode"] if target["metric"] == train["monitor"]
                              else "min" if "loss" in target["metric"] else "max")
    return target["metric"], target["value"], mode


def evaluations(run_dir: Path) -> list[dict[str, Any]]:
    """The run's validation events, in order."""
    return [e for e in read_events(RunDir(run_dir).metrics) if e.get("event") == "val"]


def result_row(cell: Cell, problem: dict[str, Any]) -> dict[str, Any]:
    """One run's line of results.csv."""
    target_loss = problem["target_loss"]
    target = target_of(problem)
    step_to_target = seconds_to_target = None
    if target is not None:
        step_to_target, seconds_to_target = time_to_target(evaluations(cell.run_dir), *target)
    run = RunDir(cell.run_dir)
    summary = run.read_summary() or {}
    steps, losses, _ = series(cell.run_dir, "loss")
    monitor = cell.values["train"]["monitor"]
    _, monitored, _ = series(cell.run_dir, monitor)
    optimizer = cell.values["optimizer"]
    return {
        "problem": cell.problem, "optimizer": cell.optimizer, "variant": cell.variant,
        "trial": cell.trial, "point": ";".join(f"{k}={compact(v)}" for k, v in cell.point),
        "seed": cell.seed,
        "base": optimizer["name"], "learning_rate": optimizer["learning_rate"],
        "tricks": "; ".join(tricks(optimizer)) or "none",
        "status": effective_status(summary) if run.is_run() else "not run",
        "steps": summary.get("step"),
        "final_loss": losses[-1] if losses else None,
        "best_loss": min(losses) if losses else None,
        "metric": monitor,
        "final_metric": monitored[-1] if monitored else None,
        "best_metric": (summary.get("best") or {}).get("value"),
        "target_loss": target_loss,
        "steps_to_target": steps_to(steps, losses, target_loss),
        "target_metric": target[0] if target else None,
        "target_value": target[1] if target else None,
        "step_to_target": step_to_target, "seconds_to_target": seconds_to_target,
        "wall_seconds": summary.get("wall_seconds"),
        "steps_per_sec": summary.get("steps_per_sec"),
        "run_dir": str(cell.run_dir),
    }


def collect(bench: Bench) -> list[dict[str, Any]]:
    return [result_row(cell, bench.problem(cell.problem)) for cell in bench.cells]


def final_value(cell: Cell) -> float | None:
    """The run's last validation value of its problem's monitored metric (the score of a
    tuning trial); None if it never evaluated or did not finish."""
    if effective_status(RunDir(cell.run_dir).read_summary()) != "finished":
        return None
    _, values, _ = series(cell.run_dir, cell.values["train"]["monitor"])
    return values[-1] if values else None


def _cell_text(value: Any) -> str:
    return "" if value is None else str(value)  # floats: repr, which reads back to the same number


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([[_cell_text(row[column]) for column in COLUMNS] for row in rows])
    write_text_atomic(path, buffer.getvalue())
