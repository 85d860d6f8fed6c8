"""report.md: per problem, the optimizers ranked by its monitored metric, mean ± std over seeds."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from blogml.comparison.claims import ClaimResult
from blogml.comparison.grid import Bench
from blogml.comparison.schema import optimizers_of
from blogml.tasks.problems import PROBLEMS


def significant(value: float, digits: int) -> str:
    """`digits` significant digits; large numbers as plain integers (120, not 1.2e+02)."""
    if math.isfinite(value) and 10 ** digits <= abs(value) < 1e9:
        return f"{float(f'{value:.{digits}g}'):.0f}"
    return f"{value:.{digits}g}"


def mean_std(values: list[float]) -> str:
    """`mean ± std` over seeds (std: sample, n − 1), 4 and 2 significant digits; `-` if none."""
    if not values:
        return "-"
    mean = significant(statistics.fmean(values), 4)
    if len(values) == 1:
        return mean
    return f"{mean} ± {significant(statistics.stdev(values), 2)}"


def _values(rows: list[dict[str, Any]], column: str) -> list[float]:
    return [row[column] for row in rows if row[column] is not None]


def ranked(rows: list[dict[str, Any]], optimizers: list[str],
           mode: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """Optimizers by mean final metric, best first; those without a value last."""
    groups = [(name, [r for r in rows if r["optimizer"] == name]) for name in optimizers]

    def key(group: tuple[str, list[dict[str, Any]]]) -> tuple[bool, float]:
        values = _values(group[1], "final_metric")
        if not values:
            return True, 0.0
        mean = statistics.fmean(values)
        return False, mean if mode == "min" else -mean
    return sorted(groups, key=key)


def _settings(section: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in section.items() if k != "problem") or "defaults"


def problem_section(bench: Bench, problem: str, rows: list[dict[str, Any]],
                    plots: list[Path]) -> list[str]:
    entry = bench.problem(problem)
    train, kind = entry["train"], entry["data"]["problem"]
    metric, mode = train["monitor"], train["monitor_mode"]
    target = entry["target_loss"]
    better = "lower" if mode == "min" else "higher"
    doc = PROBLEMS[kind].doc
    schedule = {k: train[k] for k in ("epochs", "steps_per_epoch", "batch_size")}
    lines = [f"## {problem} ({kind})", "",
             f"{doc[0].upper()}{doc[1:]}. Data: {_settings(entry['data'])}. "
             f"Model: {_settings(entry['model'])}. Training: {_settings(schedule)}.", "",
             f"Ranked by the final {metric} ({better} is better); mean ± std over "
             f"{len(bench.values['seeds'])} seeds (sample std).", ""]
    header = ["rank", "optimizer", "tricks", f"final {metric}", f"best {metric}",
              "final loss", "best loss"]
    if target is not None:
        header.append(f"steps to loss ≤ {target:g}")
    header += ["wall s", "steps/s", "finished"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, (name, group) in enumerate(ranked(rows, optimizers_of(bench.values, problem),
                                                mode), start=1):
        cells = [str(rank), name, group[0]["tricks"] if group else "-",
                 mean_std(_values(group, "final_metric")), mean_std(_values(group, "best_metric")),
                 mean_std(_values(group, "final_loss")), mean_std(_values(group, "best_loss"))]
        if target is not None:
            reached = _values(group, "steps_to_target")
            median = f"{statistics.median(reached):g} " if reached else ""
            cells.append(f"{median}({len(reached)}/{len(group)} reached)")
        finished = sum(row["status"] == "finished" for row in group)
        cells += [mean_std(_values(group, "wall_seconds")),
                  mean_std(_values(group, "steps_per_sec")), f"{finished}/{len(group)}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"![{problem}: {plot.stem.removeprefix(problem + '_').replace('_', ' ')}]"
              f"({plot.relative_to(bench.out_dir).as_posix()})" for plot in plots]
    return lines + [""]


def write_report(bench: Bench, rows: list[dict[str, Any]], plots: dict[str, list[Path]],
                 claims: list[ClaimResult]) -> Path:
    seeds = ", ".join(str(s) for s in bench.values["seeds"])
    lines = [f"# Optimizer benchmark: {bench.source}", "",
             f"{len(rows)} runs: every problem with its optimizers, seeds {seeds}. One row per "
             "run in `results.csv`; each run's directory (config, metrics.jsonl, checkpoints) "
             "under `runs/PROBLEM/OPTIMIZER/seedSEED/`. Losses are the logged training losses "
             "(means over each logging window); steps count batches.", ""]
    for problem in bench.values["problems"]:
        lines += problem_section(bench, problem, [r for r in rows if r["problem"] == problem],
                                 plots.get(problem, []))
    if claims:
        lines += ["## Claims", ""]
        lines += [f"- **{claim.name}**: {claim.sentence}" for claim in claims]
        lines.append("")
    path = bench.out_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
