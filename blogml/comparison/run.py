"""Run a bench: plan every cell first, run them (in order, or in parallel with `--jobs`)
under one progress bar, then write results.csv, the plots and report.md from the runs' own
records.

Each cell is planned like `blogml train CONFIG --run-dir CELL_DIR --resume`: a finished
run is reused as it is, an interrupted one continues from its last checkpoint, and a
missing one starts. Re-running a bench therefore redoes no finished work, and since every
run is a function of its config and seed, its numbers do not change.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from blogml.comparison.claims import ClaimResult, claims_under_tuning, evaluate_claims
from blogml.comparison.grid import Bench, Cell, check_bench, tuned_cells
from blogml.comparison.plots import plot_bench, plot_profiles
from blogml.comparison.profiles import curves
from blogml.comparison.report import write_report
from blogml.comparison.results import collect, final_value, write_csv
from blogml.errors import EXIT_INTERRUPTED, BlogmlError, ConfigError, RunDirError
from blogml.runners.console import interactive
from blogml.runners.launch import Outcome
from blogml.runners.planning import RunPlan, discard, plan_runs
from blogml.runners.study import Parallelism, run_study


@dataclass(frozen=True)
class BenchOutcome:
    outcomes: list[Outcome]  # one per run that was started or reused, in grid order
    results: Path | None = None  # None: interrupted before the outputs were written
    report: Path | None = None
    claims: tuple[ClaimResult, ...] = ()


def plan_cells(bench: Bench) -> list[RunPlan]:
    """One plan per cell, in grid order; one RunDirError naming every cell that cannot run."""
    plans, problems = [], []
    for cell in bench.cells:
        try:
            plans.extend(plan_runs([cell.loaded], str(cell.run_dir), resume=True))
        except BlogmlError as error:
            problems.append(str(error))
    if problems:
        raise RunDirError("\n".join(problems) + "\n(to run a cell again from scratch, delete "
                          f"its run directory; to start a new bench, change out_dir in "
                          f"{bench.source})")
    return plans


def prepare(paths: Sequence[str]) -> list[tuple[Bench, list[RunPlan]]]:
    """Load, check and plan every bench file before anything runs.

    Raises one error listing every mistake of every file (ConfigError), followed by every
    run directory that cannot be used (then a RunDirError): the sound runs of a file with
    mistakes are planned too, so that one round shows everything to fix.
    """
    checked = [check_bench(path) for path in paths]
    issues = [issue for _, file_issues in checked for issue in file_issues]
    plans, problems = [], []
    for bench, _ in checked:
        try:
            plans.append(plan_cells(bench))
        except RunDirError as error:
            problems.append(str(error))
    if issues or problems:
        for planned in plans:
            discard(planned)
    if problems:
        raise RunDirError("\n".join([*map(str, issues), *problems]))
    if issues:
        raise ConfigError(issues)
    return [(bench, planned) for (bench, _), planned in zip(checked, plans)]


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def run_bench(bench: Bench, plans: list[RunPlan],
              parallelism: Parallelism = Parallelism()) -> BenchOutcome:
    """Run (or reuse) every planned cell (the defaults and the tuning trials), then the
    tuned runs their results pick, then write the outputs; an interrupted run stops the
    bench before its outputs are written."""
    with tqdm(total=len(plans), desc="bench", unit="run", disable=not interactive(),
              file=sys.stderr, dynamic_ncols=True) as bar:
        outcomes, stopped = _run_cells(bench.cells, plans, parallelism, bar)
        if stopped is None:
            tuned = tuned_cells(bench, final_value)
            planned = {cell.run_dir for cell in bench.cells}  # a tuning seed's run is reused
            fresh = [cell for cell in tuned if cell.run_dir not in planned]
            bar.total += len(fresh)
            bar.refresh()
            more, stopped = _run_cells(fresh, plan_cells(dataclasses.replace(bench, cells=fresh)),
                                       parallelism, bar)
            outcomes += more
            bench = dataclasses.replace(bench, cells=bench.cells + tuned)
    if stopped is not None:
        _say(f"bench interrupted at {stopped}; run the same command again to continue")
        return BenchOutcome(outcomes)
    bench.out_dir.mkdir(parents=True, exist_ok=True)
    rows = collect(bench)
    results = bench.out_dir / "results.csv"
    write_csv(rows, results)
    claims = evaluate_claims(bench)
    tuned_claims = claims_under_tuning(bench)
    report = write_report(bench, rows, plot_bench(bench, rows), claims,
                          [(c.name, c.sentence) for c in tuned_claims],
                          plot_profiles(curves(rows), bench.out_dir / "plots" / "profiles.png"))
    return BenchOutcome(outcomes, results, report, tuple(claims) + tuple(tuned_claims))


def _run_cells(cells: list[Cell], plans: list[RunPlan], parallelism: Parallelism,
               bar: tqdm) -> tuple[list[Outcome], str | None]:
    """The cells' runs; (outcomes of those started, the names of those stopped or None)."""
    def on_outcome(index: int, outcome: Outcome) -> None:
        bar.set_postfix_str(cells[index].name)
        bar.update(1)
        if bar.disable:  # (a disabled bar counts nothing)
            ended.append(index)
            _say(f"bench [{len(ended)}/{len(cells)}] {cells[index].name}: {outcome.status}")

    ended: list[int] = []

    outcomes = run_study(plans, parallelism, on_outcome, say=_say)
    discard([plan for plan, outcome in zip(plans, outcomes) if outcome is None])
    stopped = [cell.name for cell, outcome in zip(cells, outcomes)
               if outcome is not None and outcome.exit_code == EXIT_INTERRUPTED]
    done = [outcome for outcome in outcomes if outcome is not None]
    if stopped or len(done) < len(plans):
        return done, ", ".join(stopped) or "its start"
    return done, None
