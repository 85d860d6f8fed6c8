"""`blogml config show|check`: resolved configs and validation, without importing Keras."""

from __future__ import annotations

from typing import Any

import click
import yaml

from blogml.cli.options import set_option, sweep_option
from blogml.config import dump_config, parse_overrides

DEFAULT = "default"


@click.group()
def config() -> None:
    """Inspect and validate configs."""


@config.command()
@click.argument("config_file", metavar="CONFIG")
@set_option
@sweep_option
@click.option("--origin", is_flag=True,
              help="After each value, where it came from: FILE:LINE (the config or one of its "
                   "base: files), --set, --sweep, or default.")
def show(config_file: str, overrides: tuple[str, ...], sweeps: tuple[str, ...],
         origin: bool) -> None:
    """Print CONFIG fully resolved: every default filled in, overrides applied, bases
    merged; a swept config as one YAML document per point."""
    from blogml.tasks.configs import load_configs  # the schemas: lazily, for --help

    points = load_configs([config_file], parse_overrides(overrides), sweeps)
    documents = []
    for loaded in points:
        text = with_origins(loaded.values, loaded.origins) if origin \
            else dump_config(loaded.values)
        if loaded.point:
            text = f"# sweep: {_point(loaded.point)}\n{text}"
        documents.append(text)
    click.echo("---\n".join(documents), nl=False)


def with_origins(values: dict[str, Any], origins: dict[str, str]) -> str:
    """The resolved config as YAML, one key per line, each value followed by `# origin`."""
    lines: list[str] = []

    def walk(node: dict[str, Any], prefix: str, indent: str) -> None:
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                lines.append(f"{indent}{_key(key)}:")
                walk(value, f"{path}.", indent + "  ")
                continue
            text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True,
                                  width=10**6).strip()
            text = text.removesuffix("\n...").removesuffix("...").strip()
            lines.append(f"{indent}{_key(key)}: {text}  # {origins.get(path, DEFAULT)}")

    walk(values, "", "")
    return "\n".join(lines) + "\n"


def _point(point: tuple[tuple[str, Any], ...]) -> str:
    """A sweep point as `seed=0, optimizer.learning_rate=0.001`."""
    return ", ".join(f"{key}={value!r}" for key, value in point)


def _key(key: Any) -> str:
    return yaml.safe_dump(key, default_flow_style=True).strip().removesuffix("...").strip()


@config.command()
@click.argument("config_files", metavar="CONFIG...", nargs=-1, required=True)
@set_option
@sweep_option
@click.option("--data", "with_data", is_flag=True,
              help="Also open the files each config names (image cache, NL2SQL data and "
                   "databases, BERT folder, the VQ-VAE run of a prior) and check them as "
                   "`blogml train` does before it starts.")
def check(config_files: tuple[str, ...], overrides: tuple[str, ...], sweeps: tuple[str, ...],
          with_data: bool) -> None:
    """Validate configs (every point of a sweep); list every problem of every file (exit 2
    if any).

    Without --data only the configs are read (nothing heavy is imported); --data is
    opt-in because it opens data files, which may be large or on slow storage.
    """
    from blogml.tasks.configs import load_configs  # the schemas: lazily, for --help

    configs = load_configs(config_files, parse_overrides(overrides), sweeps)
    if with_data:
        from blogml.runners.preflight import check_data

        check_data(configs)
    for loaded in configs:
        point = f", {_point(loaded.point)}" if loaded.point else ""
        click.echo(f"{loaded.source}: ok ({loaded.task}{point}"
                   f"{', data checked' if with_data else ''})")
