"""`blogml bench optimizers CONFIG...`: the optimizer benchmark (its work: blogml.comparison)."""

from __future__ import annotations

import sys

import click

from blogml.cli.options import parallel_options
from blogml.cli.train_cmd import combined_exit_code


@click.group()
def bench() -> None:
    """Benchmarks: grids of runs, summarised in one report."""


@bench.command()
@click.argument("config_files", metavar="CONFIG...", nargs=-1, required=True)
@parallel_options
def optimizers(config_files: tuple[str, ...], parallelism) -> None:
    """Run the optimizer benchmark of each bench file: optimizers x problems x seeds.

    Every run of every file is checked before any starts. Finished runs are reused and
    interrupted ones resumed, so the same command continues a bench; --jobs N trains N
    runs at a time, with the same numbers. Writes results.csv, report.md and plots/ in
    each bench's out_dir. Exit code: 0 all finished, 1 a run
    failed, 2 bad input, 130 interrupted.
    """
    from blogml.comparison.run import prepare, run_bench
    from blogml.runners.study import check_parallel

    check_parallel([], parallelism)  # a bench's cells are single-device optbench runs
    prepared = prepare(config_files)
    codes = []
    for loaded, plans in prepared:
        outcome = run_bench(loaded, plans, parallelism)
        codes += [o.exit_code for o in outcome.outcomes]
        for o in outcome.outcomes:
            if o.status in ("failed", "error"):
                click.echo(f"{o.run_dir}: {o.status}: {o.message}", err=True)
        if outcome.report is None:
            break  # interrupted
        click.echo(f"{loaded.source}:\n  results: {outcome.results}\n  report:  {outcome.report}")
        for claim in outcome.claims:
            click.echo(f"  claim {claim.name}: {claim.sentence.replace('**', '')}")
    sys.exit(combined_exit_code(codes))
