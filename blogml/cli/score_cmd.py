"""`blogml score`: score any NL2SQL submission file against a gold split, as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option("--gold", required=True, metavar="FILE", help="Gold questions, e.g. val/val.json.")
@click.option("--pred", required=True, metavar="FILE",
              help="Predictions: one sql object (or {\"sql\": ...}) per line, in gold order.")
@click.option("--db", required=True, metavar="FILE", help="The split's SQLite file.")
@click.option("--tables", default=None, metavar="FILE",
              help="Tables file (default: next to --gold, e.g. val/val.tables.json).")
@click.option("--official", is_flag=True,
              help="Also score as the official evaluation does, quirks included (\"official\").")
def score(gold: str, pred: str, db: str, tables: str | None, official: bool) -> None:
    """Logical-form and execution accuracy, competition score and per-component accuracy."""
    from blogml.metrics.nl2sql_files import score_files

    result = score_files(Path(gold), Path(pred), Path(db), Path(tables) if tables else None,
                         official=official)
    click.echo(json.dumps(result))
