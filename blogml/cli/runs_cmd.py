"""`blogml runs`: a table of the runs under a folder, filtered and sorted for a quick look."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from blogml.cli.table import format_metric, format_seconds, render_table
from blogml.config.keypaths import compact, leaves, short_names
from blogml.config.loader import read_yaml
from blogml.config.schema import show
from blogml.runners.rundir import STATUSES, RunDir, effective_status

SORT_COLUMNS = ("run_dir", "task", "status", "steps", "best", "time")
UNKNOWN = "?"  # a field whose file cannot be read, or holds a value of the wrong shape
# Config keys never compared: each has its own column, which for run_dir says more than
# the config's template (`runs/x-{time}`, the same for every run of config x).
NOT_COMPARED = ("run_dir", "task")
WIDTH = 24  # a config cell longer than this is cut, ending in …
MISSING = object()  # a config key a run does not have: shown as -


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
    config: dict[str, Any] = field(default_factory=dict)  # leaves of config.yaml by path
    unknown: set[str] = field(default_factory=set)  # columns shown as UNKNOWN
    problems: list[str] = field(default_factory=list)  # "FILE: what is wrong", for warnings


def find_runs(root: Path) -> list[RunDir]:
    """Every run directory (a folder with config.yaml) under `root`, including root itself."""
    return sorted((RunDir(p.parent) for p in root.rglob("config.yaml")), key=lambda r: str(r))


def read_row(run: RunDir) -> RunRow:
    """What the table shows of `run`. A config.yaml or summary.json that cannot be read, or
    holds a value of the wrong shape, costs only the fields it should give: they show as
    `?` and the problem is listed, since one broken run must not hide a study's others."""
    row = RunRow(str(run), UNKNOWN, "interrupted")  # no summary yet: killed before the first
    config, reason = read_yaml(str(run.config))
    if config is None:
        row.problems.append(f"{run.config}: {reason}; its task and config are shown as ?")
        row.unknown.add("config")
        config = {}
    row.config = leaves({k: v for k, v in config.items() if k not in NOT_COMPARED})
    task = config.get("task", UNKNOWN)
    if isinstance(task, str):
        row.task = task
    else:
        row.problems.append(f"{run.config}: task: must be a string, got {show(task)}; "
                            "shown as ?")
    train = config.get("train")
    mode = train.get("monitor_mode") if isinstance(train, dict) else None
    row.best_mode = mode if mode in ("min", "max") else "min"
    summary = _read_summary(run)
    if isinstance(summary, str):
        row.problems.append(f"{run.summary_path}: {summary}; its fields are shown as ?")
        row.status = UNKNOWN
        row.unknown |= {"status", "steps", "best", "time", "metrics"}
    elif summary is not None:
        _read_summary_fields(row, summary, str(run.summary_path))
    return row


def _read_summary(run: RunDir) -> dict[str, Any] | str | None:
    """The run's summary.json as a mapping, None when there is none yet, or why it is none
    (`RunDir.read_summary` reads anything but a JSON object as none)."""
    try:
        summary = run.read_summary()
    except (OSError, ValueError) as error:  # ValueError: not UTF-8
        return f"cannot be read ({getattr(error, 'strerror', None) or error})"
    if summary is None:
        return "not a JSON object" if run.summary_path.exists() else None
    return summary


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_summary_fields(row: RunRow, summary: dict[str, Any], path: str) -> None:
    """Each field of a summary mapping into `row`; a wrong one into `row.problems`."""
    def wrong(key: str, value: Any, expected: str, column: str) -> None:
        row.problems.append(f"{path}: {key}: must be {expected}, got {show(value)}; shown as ?")
        row.unknown.add(column)

    status = summary.get("status", "interrupted")
    if status in STATUSES:
        row.status = effective_status(summary)
    else:
        wrong("status", status, "one of " + ", ".join(STATUSES), "status")
        row.status = UNKNOWN
    step, total = summary.get("step", 0), summary.get("total_steps", UNKNOWN)
    if _is_int(step):
        row.step = step
    else:
        wrong("step", step, "an integer", "steps")
    if _is_int(total) or total == UNKNOWN:
        row.total_steps = total
    else:
        wrong("total_steps", total, "an integer", "steps")
    best = _or_empty(summary.get("best"))
    if (isinstance(best, dict) and isinstance(best.get("metric"), (str, type(None)))
            and (best.get("value") is None or _is_number(best.get("value")))):
        row.best = (best.get("metric"), best.get("value"))
    else:
        wrong("best", best, "a mapping {metric: NAME, value: NUMBER}", "best")
    seconds = summary.get("wall_seconds")
    if seconds is None or _is_number(seconds):
        row.wall_seconds = seconds
    else:
        wrong("wall_seconds", seconds, "a number", "time")
    final = _or_empty(summary.get("final"))
    val = _or_empty(final.get("val")) if isinstance(final, dict) else final
    if isinstance(val, dict):
        row.final_val = val
    else:
        wrong("final" if val is final else "final.val", val, "a mapping", "metrics")


def _or_empty(value: Any) -> Any:
    """A summary section not written yet (null) reads as empty; any other value as given."""
    return {} if value is None else value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _metric(row: RunRow, name: str) -> float | None:
    """Final validation value of `name` (`val_psnr` and `psnr` both work)."""
    value = row.final_val.get(name.removeprefix("val_"))
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def differing(configs: list[dict[str, Any]]) -> list[str]:
    """The paths of `configs` (as `leaves` gives them) whose value is not the same in all,
    one missing from some included: what tells the runs of a study apart. In the order first
    met, which is the config's key order."""
    paths = dict.fromkeys(path for config in configs for path in config)
    return [path for path in paths
            if any(config.get(path, MISSING) != configs[0].get(path, MISSING)
                   for config in configs)]


def _config_cell(row: RunRow, path: str) -> str:
    """`-` where the run lacks the key (made before it existed), `?` where no config."""
    if path not in row.config:
        return _cell(row, "config", "-")
    text = compact(row.config[path])
    return text if len(text) <= WIDTH else text[:WIDTH - 1] + "…"


def _sort_key(column: str, metrics: tuple[str, ...], config: dict[str, str]):
    """Key putting runs without the value last; `best` is best-first (per its mode); a config
    column (`config`: header to path) by number, else by text."""
    def key(row: RunRow) -> tuple:
        if column in metrics:
            value = _metric(row, column)
            return (value is None, -(value or 0.0))  # higher first; --reverse flips
        if column in config:
            value = row.config.get(config[column], MISSING)
            if _is_number(value):
                return (False, False, value, "")
            return (value is MISSING, True, 0.0, "" if value is MISSING else compact(value))
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
@click.option("--differ/--no-differ", default=True, show_default=True,
              help="Add a column per config key whose value differs between the listed "
                   "runs, e.g. learning_rate.")
@click.option("--sort", "sort", default="run_dir", show_default=True, metavar="COLUMN",
              help="Sort by run_dir, task, status, steps, best (best first, per metric), "
                   "time, a --metric NAME (highest first) or a differing config column.")
@click.option("--reverse", is_flag=True, help="Reverse the order.")
def runs(root: str, tasks: tuple[str, ...], statuses: tuple[str, ...],
         metrics: tuple[str, ...], differ: bool, sort: str, reverse: bool) -> None:
    """List the runs under ROOT (default: runs): task, status, steps, best metric, time,
    and the config keys that differ between them.

    A morning look at an overnight study: `blogml runs runs/study --task vqvae
    --metric val_psnr --sort val_psnr`.
    """
    if not Path(root).is_dir():
        raise click.BadParameter(f"{root}: no such folder", param_hint="ROOT")
    rows = [row for row in map(read_row, find_runs(Path(root)))
            if (not tasks or row.task in tasks) and (not statuses or row.status in statuses)]
    # Between the fixed columns and the --metric ones: a run's inputs next to the results
    # asked for, which end the line where the eye reads them.
    paths = (differing([row.config for row in rows if "config" not in row.unknown])
             if differ else [])
    config = dict(zip(short_names(paths, {*SORT_COLUMNS, *metrics}), paths))
    if sort not in SORT_COLUMNS and sort not in metrics and sort not in config:
        raise click.BadParameter(f"{sort!r}: one of {', '.join(SORT_COLUMNS)}, a name given "
                                 "with --metric, or a config column that differs between the "
                                 f"listed runs ({', '.join(config) or 'none'})",
                                 param_hint="--sort")
    if not rows:
        click.echo(f"no runs under {root}" + (" match" if tasks or statuses else ""))
        return
    rows.sort(key=_sort_key(sort, metrics, config), reverse=reverse)
    click.echo(render_table(
        ["run_dir", "task", "status", "steps", "best", "time", *config, *metrics],
        [[row.run_dir, row.task, row.status,
          _cell(row, "steps", "-" if row.step is None else f"{row.step}/{row.total_steps}"),
          _cell(row, "best", format_metric(row.best)),
          _cell(row, "time", format_seconds(row.wall_seconds)),
          *(_config_cell(row, path) for path in config.values()),
          *(_cell(row, "metrics", _format(_metric(row, name))) for name in metrics)]
         for row in rows]))
    for row in rows:
        for problem in row.problems:
            click.echo(f"warning: {problem}", err=True)


def _cell(row: RunRow, column: str, text: str) -> str:
    return UNKNOWN if column in row.unknown else text


def _format(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
