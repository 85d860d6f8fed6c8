"""report.md: per problem, the optimizers ranked by its monitored metric, mean ± std over seeds."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from blogml.comparison.claims import ClaimResult
from blogml.comparison.grid import Bench
from blogml.comparison.profiles import area, profile, timed, times_of
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


VARIANT_WORDS = {
    "default": "Default settings: each optimizer section as written",
    "tuned": "Tuned: each tuned optimizer at the best point of its search (by the final {metric} "
             "on the tuning seeds, ties to the earlier point), run on every seed",
}


def problem_section(bench: Bench, problem: str, rows: list[dict[str, Any]],
                    plots: list[Path]) -> list[str]:
    entry = bench.problem(problem)
    train, kind = entry["train"], entry["data"]["problem"]
    metric, mode = train["monitor"], train["monitor_mode"]
    better = "lower" if mode == "min" else "higher"
    doc = PROBLEMS[kind].doc
    if doc[0].isascii():  # "θ ∈ R^dim" keeps its θ (Θ would be another symbol)
        doc = doc[0].upper() + doc[1:]
    schedule = {k: train[k] for k in ("epochs", "steps_per_epoch", "batch_size")}
    lines = [f"## {problem} ({kind})", "",
             f"{doc}. Data: {_settings(entry['data'])}. "
             f"Model: {_settings(entry['model'])}. Training: {_settings(schedule)}.", "",
             f"Ranked by the final {metric} ({better} is better); mean ± std over "
             f"{len(bench.values['seeds'])} seeds (sample std).", ""]
    for variant in ("default", "tuned"):
        chosen = [r for r in rows if r["variant"] == variant]
        if chosen:
            if variant == "tuned" or any(r["variant"] == "tuned" for r in rows):
                lines += [VARIANT_WORDS[variant].format(metric=metric) + ":", ""]
            lines += _ranking(bench, problem, entry, chosen) + [""]
    lines += _tuning(bench, problem, rows, metric)
    lines += [f"![{problem}: {plot.stem.removeprefix(problem + '_').replace('_', ' ')}]"
              f"({plot.relative_to(bench.out_dir).as_posix()})" for plot in plots]
    return lines + [""]


def _ranking(bench: Bench, problem: str, entry: dict[str, Any],
             rows: list[dict[str, Any]]) -> list[str]:
    metric, mode = entry["train"]["monitor"], entry["train"]["monitor_mode"]
    target_loss, target = entry["target_loss"], entry["target"]
    header = ["rank", "optimizer", "tricks", f"final {metric}", f"best {metric}",
              "final loss", "best loss"]
    if target_loss is not None:
        header.append(f"steps to loss ≤ {target_loss:g}")
    if target is not None:
        header.append(f"to {target['metric']} {target['value']:g}: step, s")
    header += ["wall s", "steps/s", "finished"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    present = [o for o in optimizers_of(bench.values, problem)
               if any(r["optimizer"] == o for r in rows)]
    for rank, (name, group) in enumerate(ranked(rows, present, mode), start=1):
        cells = [str(rank), name, group[0]["tricks"] if group else "-",
                 mean_std(_values(group, "final_metric")), mean_std(_values(group, "best_metric")),
                 mean_std(_values(group, "final_loss")), mean_std(_values(group, "best_loss"))]
        if target_loss is not None:
            reached = _values(group, "steps_to_target")
            median = f"{statistics.median(reached):g} " if reached else ""
            cells.append(f"{median}({len(reached)}/{len(group)} reached)")
        if target is not None:
            steps, seconds = _values(group, "step_to_target"), _values(group, "seconds_to_target")
            median = (f"{statistics.median(steps):g}, {significant(statistics.median(seconds), 3)}"
                      f" " if steps else "")
            cells.append(f"{median}({len(steps)}/{len(group)} reached)")
        finished = sum(row["status"] == "finished" for row in group)
        cells += [mean_std(_values(group, "wall_seconds")),
                  mean_std(_values(group, "steps_per_sec")), f"{finished}/{len(group)}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _tuning(bench: Bench, problem: str, rows: list[dict[str, Any]], metric: str) -> list[str]:
    """The tuned optimizers' searches: budget, best point and its score."""
    tuned = [r for r in rows if r["variant"] == "tuned"]
    if not tuned:
        return []
    lines = [f"Searches ({len(bench.values['tuning_seeds'])} tuning seeds each; score: final "
             f"{metric}, mean over them):", "",
             "| optimizer | budget | best trial | point | score |", "|---|---|---|---|---|"]
    for optimizer in dict.fromkeys(r["optimizer"] for r in tuned):
        best = next(r for r in tuned if r["optimizer"] == optimizer)
        trials = [r for r in rows if r["variant"] == "trial" and r["optimizer"] == optimizer
                  and r["trial"] == best["trial"]]
        score = _values(trials, "final_metric")
        budget = bench.values["optimizers"][optimizer]["budget"]
        lines.append(f"| {optimizer} | {budget} | {best['trial']} | {best['point']} | "
                     f"{significant(statistics.fmean(score), 4) if score else '-'} |")
    return lines + [""]


def profile_section(rows: list[dict[str, Any]], plot: Path | None, out_dir: Path,
                    tau_max: float = 4.0) -> list[str]:
    """AlgoPerf's performance profiles over the problems with a target."""
    lines = []
    for variant in ("default", "tuned"):
        times = times_of(rows, variant)
        if not times:
            continue
        optimizers = timed(times)
        if not lines:
            lines = ["## Performance profiles", "",
                     f"Time to target: the wall-clock seconds of a run's first validation at "
                     f"its problem's target (median over seeds; never reached: infinite). "
                     f"ρ(τ): the fraction of the {len(times)} problems with a target on which "
                     f"an optimizer is within τ times the fastest; score: the area under ρ "
                     f"from τ = 1 to {tau_max:g}, over {tau_max - 1:g} (1: the fastest "
                     "everywhere).", ""]
        lines += [f"{variant.capitalize()} settings:", "",
                  "| optimizer | score | ρ(1) | ρ(1.5) | ρ(2) | ρ(4) |",
                  "|---|---|---|---|---|---|"]
        scored = sorted(optimizers, key=lambda o: -area(times, o, tau_max))
        for optimizer in scored:
            rho = [f"{profile(times, optimizer, tau):.2f}" for tau in (1, 1.5, 2, 4)]
            lines.append(f"| {optimizer} | {area(times, optimizer, tau_max):.3f} | "
                         + " | ".join(rho) + " |")
        lines.append("")
    if lines and plot is not None:
        lines += [f"![performance profiles]({plot.relative_to(out_dir).as_posix()})", ""]
    return lines


def write_report(bench: Bench, rows: list[dict[str, Any]], plots: dict[str, list[Path]],
                 claims: list[ClaimResult], tuned_claims: list[tuple[str, str]] = (),
                 profile_plot: Path | None = None) -> Path:
    seeds = ", ".join(str(s) for s in bench.values["seeds"])
    lines = [f"# Optimizer benchmark: {bench.source}", "",
             f"{len(rows)} rows: every problem with its optimizers, seeds {seeds}. One row per "
             "run in `results.csv` (a tuned run on a tuning seed is its trial's run, listed "
             "twice); each run's directory (config, metrics.jsonl, checkpoints) under "
             "`runs/PROBLEM/OPTIMIZER/[trialK/|tuned/]seedSEED/`. Losses are the logged "
             "training losses (means over each logging window); steps count batches.", ""]
    for problem in bench.values["problems"]:
        lines += problem_section(bench, problem, [r for r in rows if r["problem"] == problem],
                                 plots.get(problem, []))
    lines += profile_section(rows, profile_plot, bench.out_dir)
    if claims:
        lines += ["## Claims", ""]
        lines += [f"- **{claim.name}**: {claim.sentence}" for claim in claims]
        lines.append("")
    if tuned_claims:
        lines += ["## Claims under equal tuning budgets", ""]
        lines += [f"- **{name}**: {sentence}" for name, sentence in tuned_claims]
        lines.append("")
    path = bench.out_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
