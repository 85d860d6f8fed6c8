"""`blogml runs`: a table of the runs under a folder, filtered and sorted for a quick look."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from blogml.cli.table import format_metric, format_seconds, render_table
from blogml.runners.rundir import RunDir, effective_status

SORT_COLUMNS = ("run_dir", "task", "status", "steps", "best", "time")


@dataclass
class RunRow:
    """What the table shows of one run, with the raw values to sort by."""

    run_dir: str
    task: str
    status: str
    step: int | None = None
    total_steps: Any = "?"
    best: tuple[str | None, float | None] = (None, None)
    best_mode: str = "min"
    wall_seconds: float | None = None
    final_val: dict[str, float] = field(default_factory=dict)


def find_runs(root: Path) -> list[RunDir]:
    """Every run directory (a folder with config.yaml) under `root`, including root itself."""
    return sorted((RunDir(p.parent) for p in root.rglob("config.yaml")), key=lambda r: str(r))


def read_row(run: RunDir) -> RunRow:
    try:
        config = run.read_config()
    except Exception:  # a broken config.yaml still lists the run
        config = {}
    summary = run.read_summary()
    row = RunRow(str(run), config.get("task", "?"), effective_status(summary))
    if summary is not None:
        best = summary.get("best") or {}
        row.step, row.total_steps = summary.get("step", 0), summary.get("total_steps", "?")
        row.best = (best.get("metric"), best.get("value"))
        row.best_mode = (config.get("train") or {}).get("monitor_mode", "min")
        row.wall_seconds = summary.get("wall_seconds")
        row.final_val = (summary.get("final") or {}).get("val") or {}
    return row


def _metric(row: RunRow, name: str) -> float | None:
    """Final validation value of `name` (`val_psnr` and `psnr` both work)."""
    value = row.final_val.get(name.removeprefix("val_"))
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _sort_key(column: str, metrics: tuple[str, ...]):
    """Key putting runs without the value last; `best` is best-first (per its mode)."""
    def key(row: RunRow) -> tuple:
        if column in metrics:
            value = _metric(row, column)
            return (value is None, -(value or 0.0))  # higher first; --reverse flips
        if column == "best":
            metric, value = row.best
            if value is None:
                return (True, "", 0.0)
            return (False, metric or "", value if row.best_mode == "min" else -value)
        value = {"run_dir": row.run_dir, "task": row.task, "status": row.status,
                 "steps": row.step, "time": row.wall_seconds}[column]
        return (value is None, value if value is not None else 0)
    return key


@click.command()
@click.argument("root", default="runs", metavar="[ROOT]")
@click.option("--task", "tasks", multiple=True, metavar="TASK",
              help="Only runs of this task (repeatable).")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["running", "finished", "failed", "interrupted"]),
              help="Only runs with this status (repeatable).")
@click.option("--metric", "metrics", multiple=True, metavar="NAME",
              help="Add a column with the final validation value of NAME, e.g. "
                   "val_psnr (repeatable).")
@click.option("--sort", "sort", default="run_dir", show_default=True, metavar="COLUMN",
              help="Sort by run_dir, task, status, steps, best (best first, per metric), "
                   "time, or a --metric NAME (highest first).")
@click.option("--reverse", is_flag=True, help="Reverse the order.")
def runs(root: str, tasks: tuple[str, ...], statuses: tuple[str, ...],
         metrics: tuple[str, ...], sort: str, reverse: bool) -> None:
    """List the runs under ROOT (default: runs): task, status, steps, best metric, time.

    A morning look at an overnight study: `blogml runs runs/study --task vqvae
    --metric val_psnr --sort val_psnr`.
    """
    if not Path(root).is_dir():
        raise click.BadParameter(f"{root}: no such folder", param_hint="ROOT")
    if sort not in SORT_COLUMNS and sort not in metrics:
        raise click.BadParameter(f"{sort!r}: one of {', '.join(SORT_COLUMNS)}, or a name "
                                 "given with --metric", param_hint="--sort")
    rows = [row for row in map(read_row, find_runs(Path(root)))
            if (not tasks or row.task in tasks) and (not statuses or row.status in statuses)]
    if not rows:
        click.echo(f"no runs under {root}" + (" match" if tasks or statuses else ""))
        return
    rows.sort(key=_sort_key(sort, metrics), reverse=reverse)
    click.echo(render_table(
        ["run_dir", "task", "status", "steps", "best", "time", *metrics],
        [[row.run_dir, row.task, row.status,
          "-" if row.step is None else f"{row.step}/{row.total_steps}",
          format_metric(row.best),
          format_seconds(row.wall_seconds),
          *(_format(_metric(row, name)) for name in metrics)] for row in rows]))


def _format(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
