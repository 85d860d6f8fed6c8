"""`blogml train`: validate every config, then run each; a summary table at the end."""

from __future__ import annotations

import sys

import click

from blogml.cli.options import parallel_options, set_option, sweep_option
from blogml.cli.table import format_metric, format_seconds, render_table
from blogml.config import parse_overrides
from blogml.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK


def combined_exit_code(codes: list[int]) -> int:
    """Interrupted beats bad input beats failed beats ok."""
    for code in (EXIT_INTERRUPTED, EXIT_BAD_INPUT, EXIT_FAILED):
        if code in codes:
            return code
    return EXIT_OK


@click.command()
@click.argument("config_files", metavar="[CONFIG]...", nargs=-1)
@set_option
@sweep_option
@click.option("--run-dir", metavar="DIR", help="Run directory (instead of the config's run_dir "
              "template); with --resume and no CONFIG, resumes DIR with its own config.yaml.")
@click.option("--resume", is_flag=True, help="Continue the run of this config from "
              "checkpoints/last (the newest matching run under the run_dir template); finished "
              "runs are skipped, runs with nothing to resume start fresh.")
@click.option("--continue-on-error/--stop-on-error", default=True, show_default=True,
              help="After a run fails (NaN, crash, bad data), go on with the next config, "
                   "or stop there (the rest is listed as not started).")
@parallel_options
def train(config_files: tuple[str, ...], overrides: tuple[str, ...], sweeps: tuple[str, ...],
          run_dir: str | None, resume: bool, continue_on_error: bool, parallelism) -> None:
    """Train one run per CONFIG and point of its sweep, one after another (or --jobs N at
    a time).

    Every config, and the data it names, is checked before anything runs. A failing run
    does not stop the others (unless --stop-on-error); Ctrl-C (or SIGTERM) checkpoints the
    current run and stops. A study survives being killed: re-run the same command with
    --resume, and finished runs are skipped, interrupted ones continue from their
    checkpoint, the rest start; in parallel too. Exit code: 0 all finished, 1 a run
    failed, 2 bad input, 130 interrupted.
    """
    from blogml.runners.building import config_from_run_dir
    from blogml.runners.planning import discard, plan_runs
    from blogml.runners.preflight import check_data
    from blogml.runners.study import check_parallel, run_study
    from blogml.tasks.configs import load_configs

    if config_files:
        configs = load_configs(config_files, parse_overrides(overrides), sweeps)
    elif run_dir and resume:
        if overrides or sweeps:
            raise click.UsageError("--set and --sweep cannot change the config of a run "
                                   "being resumed")
        configs = [config_from_run_dir(run_dir)]
    else:
        raise click.UsageError("give at least one CONFIG, or --run-dir DIR --resume")
    check_data(configs)  # before any run dir is made: a broken one stops the whole study
    check_parallel(configs, parallelism)
    plans = plan_runs(configs, run_dir, resume)

    def on_outcome(index: int, outcome) -> None:
        if parallelism.parallel:
            click.echo(f"[{index + 1}/{len(plans)}] {outcome.run_dir}: {outcome.status}", err=True)

    outcomes = run_study(plans, parallelism, on_outcome, say=lambda m: click.echo(m, err=True),
                         stop_on_error=not continue_on_error)
    discard([plan for plan, outcome in zip(plans, outcomes) if outcome is None])
    rows = [[o.source, o.run_dir, o.status, "-" if o.step is None else str(o.step),
             format_metric(o.best), format_seconds(o.wall_seconds)] if o is not None
            else [p.loaded.source, str(p.run_dir), "not started", "-", "-", "-"]
            for p, o in zip(plans, outcomes)]
    click.echo(render_table(["config", "run_dir", "status", "steps", "best", "time"], rows))
    done = [o for o in outcomes if o is not None]
    for outcome in done:
        if outcome.exit_code not in (EXIT_OK, EXIT_INTERRUPTED) and outcome.message:
            click.echo(f"{outcome.source}: {outcome.status}: {outcome.message}", err=True)
    sys.exit(combined_exit_code([o.exit_code for o in done]))
