"""NL2SQL metrics of the first Chinese NL2SQL challenge (MISSION §5).

Logical-form accuracy compares the SQL structure (order of sel/agg pairs and of conditions
ignored; values compared as numbers when both are numbers, else as strings); execution
accuracy runs predicted and gold SQL on the split's SQLite file and compares the results;
the competition score is their mean. SQL is built with bound parameters and strictly
checked identifiers: no question text is ever pasted into SQL.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blogml.errors import BlogmlError

AGGREGATIONS = ("", "AVG", "MAX", "MIN", "COUNT", "SUM")
OPERATORS = (">", "<", "=", "!=")
CONNECTORS = ("", "AND", "OR")
COMPONENTS = ("sel", "agg", "conn", "cond_cols", "cond_ops", "cond_values")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class MalformedSQL(ValueError):
    """A prediction that is not a usable SQL structure (it scores as wrong)."""


@dataclass(frozen=True)
class SQL:
    """A checked `{sel, agg, cond_conn_op, conds}` structure."""

    sel: tuple[int, ...]
    agg: tuple[int, ...]
    conn: int
    conds: tuple[tuple[int, int, str], ...]

    @classmethod
    def parse(cls, raw: Any, num_columns: int | None = None) -> SQL:
        if not isinstance(raw, Mapping):
            raise MalformedSQL("not a JSON object")
        try:
            sel = tuple(int(c) for c in raw["sel"])
            agg = tuple(int(a) for a in raw["agg"])
            conn = int(raw.get("cond_conn_op", 0))
            conds = tuple((int(c), int(op), str(value)) for c, op, value in raw.get("conds", []))
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedSQL(f"bad field ({error})") from None
        if not sel or len(sel) != len(agg):
            raise MalformedSQL("sel and agg must be non-empty lists of the same length")
        columns = list(sel) + [c for c, _, _ in conds]
        if any(c < 0 or (num_columns is not None and c >= num_columns) for c in columns):
            raise MalformedSQL("column index out of range")
        if any(a not in range(len(AGGREGATIONS)) for a in agg):
            raise MalformedSQL("unknown aggregation code")
        if any(op not in range(len(OPERATORS)) for _, op, _ in conds):
            raise MalformedSQL("unknown operator code")
        if conn not in range(len(CONNECTORS)):
            raise MalformedSQL("unknown connector code")
        return cls(sel, agg, conn, conds)


def number(text: str) -> float | None:
    """`text` as a number, or None: "1" and "1.0" are both 1.0."""
    try:
        value = float(str(text).replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _value_key(value: str) -> tuple:
    parsed = number(value)
    return (0, parsed) if parsed is not None else (1, str(value).strip())


def _parts(sql: SQL) -> dict[str, list]:
    conds = [(c, op, _value_key(v)) for c, op, v in sql.conds]
    # One condition does not need a connector: none and AND mean the same there.
    conn = sql.conn if len(sql.conds) > 1 else 0
    return {
        "sel": sorted(sql.sel),
        "agg": sorted(zip(sql.sel, sql.agg)),
        "conn": [conn],
        "cond_cols": sorted(c for c, _, _ in conds),
        "cond_ops": sorted((c, op) for c, op, _ in conds),
        "cond_values": sorted((c, v) for c, _, v in conds),
    }


def components_equal(pred: SQL, gold: SQL) -> dict[str, bool]:
    p, g = _parts(pred), _parts(gold)
    return {name: p[name] == g[name] for name in COMPONENTS}


def logical_form_equal(pred: SQL, gold: SQL) -> bool:
    return all(components_equal(pred, gold).values())


def build_query(sql: SQL, table_name: str, types: list[str]) -> tuple[str, list[Any]]:
    """SELECT with bound values; the table name must be a plain identifier."""
    if not _TABLE_NAME.match(table_name):
        raise MalformedSQL(f"table name {table_name!r} is not a plain identifier")
    selected = [f"{AGGREGATIONS[a]}(col_{c + 1})" if a else f"col_{c + 1}"
                for c, a in zip(sql.sel, sql.agg)]
    query = f'SELECT {", ".join(selected)} FROM "{table_name}"'
    parameters: list[Any] = []
    if sql.conds:
        clauses = []
        for column, op, value in sql.conds:
            clauses.append(f"col_{column + 1} {OPERATORS[op]} ?")
            parsed = number(value)
            numeric = column < len(types) and types[column] == "real" and parsed is not None
            parameters.append(parsed if numeric else value)
        connector = f" {CONNECTORS[sql.conn] or 'AND'} "
        query += " WHERE " + connector.join(clauses)
    return query, parameters


def _normalise(rows: Iterable[tuple]) -> list[tuple]:
    def cell(value: Any) -> Any:
        parsed = number(value) if value is not None else None
        return ("n", round(parsed, 6)) if parsed is not None else ("s", str(value))
    return sorted((tuple(cell(v) for v in row) for row in rows), key=repr)


def execute(connection: sqlite3.Connection, sql: SQL, table: Mapping[str, Any]) -> list[tuple]:
    query, parameters = build_query(sql, table["name"], list(table.get("types", [])))
    return _normalise(connection.execute(query, parameters).fetchall())


def execution_equal(connection: sqlite3.Connection, pred: SQL, gold: SQL,
                    table: Mapping[str, Any]) -> bool:
    """Equal result sets; a prediction that fails to run counts as wrong."""
    try:
        predicted = execute(connection, pred, table)
    except (sqlite3.Error, MalformedSQL):
        return False
    return predicted == execute(connection, gold, table)


def score(pairs: Iterable[tuple[Any, Mapping[str, Any], Mapping[str, Any]]],
          connection: sqlite3.Connection) -> dict[str, float]:
    """Metrics over (raw prediction, gold sql, table) triples.

    Returns lf_accuracy, ex_accuracy, score (their mean), one `<component>_accuracy` per
    component, and the counts.
    """
    totals = {"lf": 0, "ex": 0, "malformed": 0, **{name: 0 for name in COMPONENTS}}
    count = 0
    for raw, gold_raw, table in pairs:
        count += 1
        gold = SQL.parse(gold_raw)
        try:
            pred = SQL.parse(raw, len(table.get("header", [])) or None)
        except MalformedSQL:
            totals["malformed"] += 1
            continue
        for name, equal in components_equal(pred, gold).items():
            totals[name] += equal
        totals["lf"] += logical_form_equal(pred, gold)
        totals["ex"] += execution_equal(connection, pred, gold, table)
    if count == 0:
        raise ValueError("nothing to score")
    lf, ex = totals["lf"] / count, totals["ex"] / count
    return {"lf_accuracy": lf, "ex_accuracy": ex, "score": (lf + ex) / 2,
            **{f"{name}_accuracy": totals[name] / count for name in COMPONENTS},
            "questions": count, "malformed_predictions": totals["malformed"]}


def score_files(gold_path: Path, pred_path: Path, db_path: Path,
                tables_path: Path | None = None) -> dict[str, float]:
    """Score a submission file (one `{"sql": ...}` or bare sql object per line, in the order
    of the gold questions) against a gold split; BlogmlError for malformed input files."""
    from blogml.data.nl2sql import read_jsonl, read_tables, tables_path_for

    gold = read_jsonl(gold_path, "gold question")
    tables = read_tables(tables_path or tables_path_for(gold_path))
    predictions = read_jsonl(pred_path, "prediction")
    if len(predictions) != len(gold):
        raise BlogmlError(f"{pred_path}: {len(predictions)} predictions for {len(gold)} gold "
                          "questions; one line per question, in order")
    for number, question in enumerate(gold, start=1):
        if "sql" not in question or question.get("table_id") not in tables:
            raise BlogmlError(f"{gold_path}:{number}: needs `sql` and a `table_id` of "
                              f"{tables_path or tables_path_for(gold_path)}")
    if not Path(db_path).is_file():
        raise BlogmlError(f"{db_path}: database not found")
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return score(((p.get("sql", p), q["sql"], tables[q["table_id"]])
                      for p, q in zip(predictions, gold)), connection)
    finally:
        connection.close()
