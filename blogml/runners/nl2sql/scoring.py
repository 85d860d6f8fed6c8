"""Predicted SQL of a split's questions, scored against their gold SQL on its database."""

from __future__ import annotations

from typing import Any

from blogml.data.nl2sql import Split, split_paths
from blogml.errors import BlogmlError
from blogml.metrics.nl2sql import check_gold, open_database, score


def check_split(root: str, split: Split) -> None:
    """BlogmlError, before any compute is spent, unless the split has a database that holds
    every table and runs every gold query (execution accuracy would otherwise count every
    prediction of them wrong, silently)."""
    questions, _, database = split_paths(root, split.name)
    if split.db_path is None:
        raise BlogmlError(f"{database}: not found; execution accuracy on {split.name} needs "
                          "the split's SQLite file (one table `Table_<id>` per table, columns "
                          "col_1..col_n)")
    connection = open_database(split.db_path)
    try:
        check_gold(connection, ((f"{questions}:{q.line}", q.sql, split.table_of(q))
                                for q in split.questions if q.sql is not None))
    finally:
        connection.close()


def score_split(split: Split, predicted: dict[int, dict[str, Any]]) -> dict[str, float]:
    """The metrics of `predicted` (sql by question line) over every question of `split`
    with sql; a question without a prediction counts wrong."""
    connection = open_database(split.db_path)
    try:
        return score(((predicted.get(q.line), q.sql, split.table_of(q))
                      for q in split.questions if q.sql is not None), connection)
    finally:
        connection.close()
