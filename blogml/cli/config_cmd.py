"""`blogml config show|check`: resolved configs and validation, without importing Keras."""

from __future__ import annotations

import click

from blogml.cli.options import set_option
from blogml.config import dump_config, parse_overrides


@click.group()
def config() -> None:
    """Inspect and validate configs."""


@config.command()
@click.argument("config_file", metavar="CONFIG")
@set_option
def show(config_file: str, overrides: tuple[str, ...]) -> None:
    """Print CONFIG fully resolved: every default filled in, overrides applied."""
    from blogml.tasks.configs import load_configs  # the schemas: lazily, for --help

    (loaded,) = load_configs([config_file], parse_overrides(overrides))
    click.echo(dump_config(loaded.values), nl=False)


@config.command()
@click.argument("config_files", metavar="CONFIG...", nargs=-1, required=True)
@set_option
@click.option("--data", "with_data", is_flag=True,
              help="Also open the files each config names (image cache, NL2SQL data and "
                   "databases, BERT folder, the VQ-VAE run of a prior) and check them as "
                   "`blogml train` does before it starts.")
def check(config_files: tuple[str, ...], overrides: tuple[str, ...], with_data: bool) -> None:
    """Validate configs; list every problem of every file (exit 2 if any).

    Without --data only the configs are read (nothing heavy is imported); --data is
    opt-in because it opens data files, which may be large or on slow storage.
    """
    from blogml.tasks.configs import load_configs  # the schemas: lazily, for --help

    configs = load_configs(config_files, parse_overrides(overrides))
    if with_data:
        from blogml.runners.preflight import check_data

        check_data(configs)
    for loaded in configs:
        click.echo(f"{loaded.source}: ok ({loaded.task}{', data checked' if with_data else ''})")
