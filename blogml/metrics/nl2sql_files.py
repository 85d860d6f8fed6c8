"""`blogml score`: a submission file scored against a gold split, by blogml's metrics and,
on request, by the official evaluation's (both below this module, neither importing it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blogml.data.nl2sql import read_jsonl, read_tables, tables_path_for
from blogml.errors import BlogmlError
from blogml.metrics import nl2sql_official
from blogml.metrics.nl2sql import check_gold, open_database, score


def score_files(gold_path: Path, pred_path: Path, db_path: Path,
                tables_path: Path | None = None, official: bool = False) -> dict[str, Any]:
    """Score a submission file (one `{"sql": ...}` or bare sql object per line, in the order
    of the gold questions) against a gold split; with `official`, also as the official
    evaluation scores it (under "official"). BlogmlError for malformed input files, a
    database that is not SQLite or lacks a table, and gold sql that cannot run."""
    tables_path = tables_path or tables_path_for(gold_path)
    gold = [question for _, question in read_jsonl(gold_path, "gold question")]
    if not gold:
        raise BlogmlError(f"{gold_path}: holds no gold questions; nothing to score")
    tables = read_tables(tables_path)
    predictions = [p.get("sql", p) for _, p in read_jsonl(pred_path, "prediction")]
    if len(predictions) != len(gold):
        raise BlogmlError(f"{pred_path}: {len(predictions)} predictions for {len(gold)} gold "
                          "questions; one line per question, in order")
    where = [f"{gold_path}:{number}" for number in range(1, len(gold) + 1)]
    for place, question in zip(where, gold):
        if "sql" not in question or question.get("table_id") not in tables:
            raise BlogmlError(f"{place}: needs `sql` and a `table_id` of {tables_path}")
    connection = open_database(Path(db_path))
    try:
        check_gold(connection, [(place, q["sql"], tables[q["table_id"]])
                                for place, q in zip(where, gold)])
        result: dict[str, Any] = score(((p, q["sql"], tables[q["table_id"]])
                                        for p, q in zip(predictions, gold)), connection)
        if official:
            result["official"] = nl2sql_official.score(
                [(place, p, q["sql"], q["table_id"])
                 for place, p, q in zip(where, predictions, gold)], connection)
        return result
    finally:
        connection.close()
