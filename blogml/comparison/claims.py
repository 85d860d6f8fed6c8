"""The `claims:` of a bench, checked against its finished runs: one verdict sentence each.

    same_result     cell and baseline end at the same value of a metric (per seed, within a
                    tolerance): e.g. 4 accumulated batches of b vs one batch of 4b
    steadier        over the last part of training the metric fluctuates less (lower std
                    over the evaluations) for cell than for baseline: e.g. Lookahead
    untouched_rows  cell leaves the rows of a variable whose ids never occur in the training
                    data bit-identical to their initial values: e.g. lazy updates
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from blogml.comparison.grid import Bench, Cell
from blogml.comparison.results import series
from blogml.runners.rundir import RunDir, effective_status


@dataclass(frozen=True)
class ClaimResult:
    name: str
    supported: bool | None  # None: not decided (a run is missing or did not finish)
    sentence: str


Claim = dict[str, Any]


def _cells(bench: Bench, cell: str) -> list[Cell]:
    problem, optimizer = cell.split("/")
    return bench.cells_of(problem, optimizer)


def _unfinished(cells: list[Cell]) -> str | None:
    for cell in cells:
        status = effective_status(RunDir(cell.run_dir).read_summary())
        if status != "finished":
            return f"run {cell.name} is {status}"
    return None


def _unlogged(cells: list[Cell], metric: str) -> str | None:
    for cell in cells:
        if not series(cell.run_dir, metric)[1]:
            return f"run {cell.name} logged no {metric} (is log_every above its steps?)"
    return None


def same_result(bench: Bench, claim: Claim) -> tuple[bool, str]:
    metric, tolerance = claim["metric"], claim["tolerance"]
    ours = [series(c.run_dir, metric)[1][-1] for c in _cells(bench, claim["cell"])]
    theirs = [series(c.run_dir, metric)[1][-1] for c in _cells(bench, claim["baseline"])]
    largest = max(abs(a - b) for a, b in zip(ours, theirs))
    supported = largest <= tolerance
    return supported, (
        f"{claim['cell']} ends at {metric} "
        f"{statistics.fmean(ours):.6g} and {claim['baseline']} at {statistics.fmean(theirs):.6g} "
        f"(means over {len(ours)} seeds); the largest difference between runs of the same seed "
        f"is {largest:.2g}, {'within' if supported else 'beyond'} the tolerance {tolerance:g}.")


def _late_spread(cell: Cell, metric: str, last_fraction: float) -> tuple[float, float]:
    """Mean and standard deviation of a metric over the last part of a run."""
    steps, values, _ = series(cell.run_dir, metric)
    total = RunDir(cell.run_dir).read_summary()["total_steps"]
    late = [v for s, v in zip(steps, values) if s > (1 - last_fraction) * total] or values[-1:]
    return float(np.mean(late)), float(np.std(late))


def steadier(bench: Bench, claim: Claim) -> tuple[bool, str]:
    metric, fraction = claim["metric"], claim["last_fraction"]
    ours = [_late_spread(c, metric, fraction) for c in _cells(bench, claim["cell"])]
    theirs = [_late_spread(c, metric, fraction) for c in _cells(bench, claim["baseline"])]
    (mean_a, std_a), (mean_b, std_b) = (np.mean(ours, axis=0), np.mean(theirs, axis=0))
    supported = bool(std_a < std_b)
    return supported, (
        f"over the last {fraction:.0%} of training, {metric} of "
        f"{claim['cell']} averages {mean_a:.4g} with std {std_a:.3g}, against {mean_b:.4g} with "
        f"std {std_b:.3g} for {claim['baseline']} (means over {len(ours)} seeds).")


def row_changes(cell: Cell, pattern: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(changed, present) per row of the first variable matching `pattern`.

    `changed`: the row of the final checkpoint differs from its initial value (rebuilt from
    the run's config and seed, exactly as the run built it); `present`: the row's id occurs
    in the training data. None if no variable matches.
    """
    import keras

    from blogml.runners import checkpoint as ckpt
    from blogml.runners.building import build_runner

    runner = build_runner(cell.loaded, RunDir(cell.run_dir))
    matched = [v for v in runner.model.variables if re.search(pattern, v.path)]
    if not matched:
        return None
    variable = matched[0]
    initial = keras.ops.convert_to_numpy(variable)
    final = dict(ckpt.load_checkpoint(RunDir(cell.run_dir).checkpoint("last")).groups["model"])
    changed = np.any(final[variable.path] != initial, axis=tuple(range(1, initial.ndim)))
    present = np.zeros(len(initial), bool)
    present[np.unique(runner.splits_data["train"][0])] = True
    return changed, present


def untouched_rows(bench: Bench, claim: Claim) -> tuple[bool | None, str]:
    counts = {}
    for role in ("cell", "baseline"):
        per_seed = [row_changes(c, claim["variable"]) for c in _cells(bench, claim[role])]
        if any(r is None for r in per_seed):
            return None, f"no variable of {claim[role]} matches {claim['variable']!r}."
        counts[role] = [(int(np.sum(ch & ~pr)), int(np.sum(~pr)), int(np.sum(ch & pr)),
                         int(np.sum(pr))) for ch, pr in per_seed]
    ours, theirs = np.mean(counts["cell"], axis=0), np.mean(counts["baseline"], axis=0)
    supported = all(unseen == 0 and seen > 0 for unseen, _, seen, _ in counts["cell"])
    return supported, (
        f"of the {ours[1]:.0f} rows of {claim['variable']!r} whose ids "
        f"never occur in the training data, {claim['cell']} changed {ours[0]:g} and "
        f"{claim['baseline']} {theirs[0]:g}, while {claim['cell']} changed {ours[2]:.0f} of the "
        f"{ours[3]:.0f} rows that do occur (means over {len(counts['cell'])} seeds; a change is "
        "any bit of the row differing from its initial value).")


EVALUATORS: dict[str, Callable[[Bench, Claim], tuple[bool | None, str]]] = {
    "same_result": same_result, "steadier": steadier, "untouched_rows": untouched_rows}


def default_statement(claim: Claim) -> str:
    if claim["kind"] == "same_result":
        return f"{claim['cell']} ends where {claim['baseline']} ends ({claim['metric']})"
    if claim["kind"] == "steadier":
        return f"{claim['cell']} is steadier than {claim['baseline']} ({claim['metric']})"
    return f"{claim['cell']} leaves the rows absent from the training data untouched"


def evaluate_claims(bench: Bench) -> list[ClaimResult]:
    return [_evaluate(bench, name, claim) for name, claim in bench.values["claims"].items()]


def _evaluate(bench: Bench, name: str, claim: Claim) -> ClaimResult:
    statement = claim["statement"] or default_statement(claim)
    cells = _cells(bench, claim["cell"]) + _cells(bench, claim["baseline"])
    missing = _unfinished(cells) or ("metric" in claim and _unlogged(cells, claim["metric"]))
    if missing:
        supported, detail = None, f"{missing}."
    else:
        supported, detail = EVALUATORS[claim["kind"]](bench, claim)
    verdict = {True: "**supported**", False: "**not supported**", None: "**not decided**"}
    return ClaimResult(name, supported, f"{statement}: {verdict[supported]} — {detail}")


def claims_under_tuning(bench: Bench) -> list[ClaimResult]:
    """Each claim again on the tuned runs, where its two optimizers were tuned with the same
    budget (Sivaprasad et al. 2020: a comparison that gives one side more tuning ranks
    wrongly); empty when the bench tunes nothing."""
    optimizers = bench.values["optimizers"]
    if not any(entry["search"] for entry in optimizers.values()):
        return []
    tuned = dataclasses.replace(bench, cells=[dataclasses.replace(c, variant="default")
                                              for c in bench.cells if c.variant == "tuned"])
    results = []
    for name, claim in bench.values["claims"].items():
        sides = [claim[role].split("/")[1] for role in ("cell", "baseline")]
        budgets = [optimizers[o]["budget"] if optimizers[o]["search"] else None for o in sides]
        if None in budgets or budgets[0] != budgets[1]:
            said = " and ".join(f"{o} {'a budget of ' + str(b) if b else 'no search'}"
                                for o, b in zip(sides, budgets))
            results.append(ClaimResult(name, None, f"not rechecked: {said}; give both the "
                                                   "same search and budget"))
            continue
        result = _evaluate(tuned, name, claim)
        results.append(dataclasses.replace(result, sentence=(
            f"with both sides tuned (budget {budgets[0]}): " + result.sentence)))
    return results
