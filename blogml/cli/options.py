"""Options shared by several commands."""

from __future__ import annotations

import click

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
    help="Override a config value (parsed as YAML), e.g. --set optimizer.learning_rate=3e-4. "
         "Repeatable.")
