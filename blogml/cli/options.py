"""Options shared by several commands."""

from __future__ import annotations

import functools

import click

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
    help="Override a config value (parsed as YAML), e.g. --set optimizer.learning_rate=3e-4. "
         "Repeatable.")

sweep_option = click.option(
    "--sweep", "sweeps", multiple=True, metavar="KEY.PATH=VALUES",
    help="Train one run per value, e.g. --sweep optimizer.learning_rate=1e-3,3e-4 (YAML values "
         "separated by commas, range(a,b[,step]) or logspace(a,b,n)); repeated: every "
         "combination. Each run dir names its values ({sweep} in run_dir).")


def parallel_options(command):
    """--jobs, --ray, --gpus-per-run, --cpus-per-run and --retries, handed to `command` as
    one `parallelism` argument (a `runners.ray_study.Parallelism`)."""

    @functools.wraps(command)
    def with_parallelism(*args, jobs, ray_address, gpus_per_run, cpus_per_run, retries,
                         **kwargs):
        from blogml.runners.ray_study import Parallelism

        if jobs is not None and ray_address:
            raise click.UsageError("--jobs starts a local Ray instance and --ray joins a "
                                   "cluster: give one of them")
        return command(*args, parallelism=Parallelism(jobs, ray_address, gpus_per_run,
                                                      cpus_per_run, retries), **kwargs)

    options = [
        click.option("--jobs", type=click.IntRange(min=1), metavar="N",
                     help="Train N runs at a time, each in a worker process of a local Ray "
                          "instance (loopback only; pip install -e \".[ray]\")."),
        click.option("--ray", "ray_address", metavar="ADDRESS",
                     help="Train on the running Ray cluster at ADDRESS (host:port, or auto); "
                          "its machines must see the same run dirs and data paths."),
        click.option("--gpus-per-run", type=click.FloatRange(min=0), metavar="G",
                     help="GPUs of each run (Ray sets its CUDA_VISIBLE_DEVICES) [default: 1 "
                          "where Ray has GPUs, else 0]; with --jobs N, N x G GPUs are declared."),
        click.option("--cpus-per-run", type=click.FloatRange(min=0, min_open=True),
                     default=1.0, show_default=True, metavar="C", help="CPUs of each run."),
        click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True,
                     metavar="K", help="Rerun a run whose worker process died (a crash, a "
                     "kill, a lost node) up to K times, from its last checkpoint; a run that "
                     "failed on its own (NaN, bad data) is not rerun."),
    ]
    for option in reversed(options):
        with_parallelism = option(with_parallelism)
    return with_parallelism
