"""`blogml runs`: a table of the runs under a folder."""

from __future__ import annotations

from pathlib import Path

import click

from blogml.cli.table import format_metric, format_seconds, render_table
from blogml.runners.rundir import RunDir, effective_status


def find_runs(root: Path) -> list[RunDir]:
    """Every run directory (a folder with config.yaml) under `root`, including root itself."""
    return sorted((RunDir(p.parent) for p in root.rglob("config.yaml")), key=lambda r: str(r))


@click.command()
@click.argument("root", default="runs", metavar="[ROOT]")
def runs(root: str) -> None:
    """List the runs under ROOT (default: runs): task, status, steps, best metric, time."""
    if not Path(root).is_dir():
        raise click.BadParameter(f"{root}: no such folder", param_hint="ROOT")
    rows = []
    for run in find_runs(Path(root)):
        summary = run.read_summary()
        try:
            task = run.read_config().get("task", "?")
        except Exception:
            task = "?"
        if summary is None:
            rows.append([str(run), task, effective_status(None), "-", "-", "-"])
            continue
        best = summary.get("best") or {}
        steps = f"{summary.get('step', 0)}/{summary.get('total_steps', '?')}"
        rows.append([str(run), task, effective_status(summary), steps,
                     format_metric((best.get("metric"), best.get("value"))),
                     format_seconds(summary.get("wall_seconds"))])
    if not rows:
        click.echo(f"no runs under {root}")
        return
    click.echo(render_table(["run_dir", "task", "status", "steps", "best", "time"], rows))
