"""`blogml config show|check`: resolved configs and validation, without importing Keras."""

from __future__ import annotations

import click

from blogml.cli.options import set_option
from blogml.config import dump_config, load_configs, parse_overrides


@click.group()
def config() -> None:
    """Inspect and validate configs."""


@config.command()
@click.argument("config_file", metavar="CONFIG")
@set_option
def show(config_file: str, overrides: tuple[str, ...]) -> None:
    """Print CONFIG fully resolved: every default filled in, overrides applied."""
    (loaded,) = load_configs([config_file], parse_overrides(overrides))
    click.echo(dump_config(loaded.values), nl=False)


@config.command()
@click.argument("config_files", metavar="CONFIG...", nargs=-1, required=True)
@set_option
def check(config_files: tuple[str, ...], overrides: tuple[str, ...]) -> None:
    """Validate configs; list every problem of every file (exit 2 if any)."""
    for loaded in load_configs(config_files, parse_overrides(overrides)):
        click.echo(f"{loaded.source}: ok ({loaded.task})")
