"""NL2SQL metrics of the first Chinese NL2SQL challenge (README: task: nl2sql).

Logical-form accuracy compares the SQL structure (order of sel/agg pairs and of conditions
ignored; values compared as numbers when both are numbers, else as strings); execution
accuracy runs predicted and gold SQL on the split's SQLite file and compares the results
(selected columns in a canonical order, rows as a multiset); the competition score is their
mean. SQL is built with bound parameters and strictly checked identifiers: no question text
is ever pasted into SQL. A database that cannot answer the gold queries is an error
(`open_database`, `check_gold`), never a low execution accuracy. The official evaluation,
quirks included, is `blogml.metrics.nl2sql_official`.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from blogml.data.nl2sql_sql import (
    AGGREGATIONS,
    CONNECTORS,
    OPERATORS,
    PLAIN_IDENTIFIER,
    SQL,
    MalformedSQL,
    Table,
    TableLike,
)
from blogml.errors import BlogmlError

COMPONENTS = ("sel", "agg", "conn", "cond_cols", "cond_ops", "cond_values")
_PROBLEMS_SHOWN = 5


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
    """The components, plus `conds` (whole conditions): components alone would take two
    conditions on one column with their values swapped for the same query."""
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
        "conds": sorted(conds),
    }


def components_equal(pred: SQL, gold: SQL) -> dict[str, bool]:
    p, g = _parts(pred), _parts(gold)
    return {name: p[name] == g[name] for name in COMPONENTS}


def logical_form_equal(pred: SQL, gold: SQL) -> bool:
    return _parts(pred) == _parts(gold)


def build_query(sql: SQL, table_name: str, types: list[str]) -> tuple[str, list[Any]]:
    """SELECT with bound values; the table name must be a plain identifier. The selected
    columns come in (sel, agg) order, so that the order a query lists them in (which logical
    form ignores) cannot change its result either."""
    if not PLAIN_IDENTIFIER.match(table_name):
        raise MalformedSQL(f"table name {table_name!r} is not a plain identifier")
    selected = [f"{AGGREGATIONS[a]}(col_{c + 1})" if a else f"col_{c + 1}"
                for c, a in sorted(zip(sql.sel, sql.agg))]
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


def execute(connection: sqlite3.Connection, sql: SQL, table: TableLike) -> list[tuple]:
    """The rows `sql` gives on `table`, normalised (numbers as numbers, order ignored)."""
    table = Table.of(table)
    query, parameters = build_query(sql, table.name, table.types)
    return _normalise(connection.execute(query, parameters).fetchall())


def execution_equal(connection: sqlite3.Connection, pred: SQL, gold: SQL,
                    table: TableLike) -> bool:
    """Equal result sets; a prediction that fails to run counts as wrong. The gold query
    runs first and its failure raises: a database or table that answers nothing must not
    pass for wrong predictions (`check_gold` reports it before scoring starts)."""
    expected = execute(connection, gold, table)
    try:
        return execute(connection, pred, table) == expected
    except (sqlite3.Error, MalformedSQL):
        return False


def open_database(path: Path) -> sqlite3.Connection:
    """The SQLite file at `path`, read-only; BlogmlError naming the path when it is missing or
    not a SQLite database. The URI is built from the percent-encoded absolute path: a `#` or
    `?` pasted into it would cut the path short and open (or create) another file, on which
    every query fails."""
    path = Path(path)
    if not path.is_file():
        raise BlogmlError(f"{path}: database not found")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise BlogmlError(f"{path}: cannot open the database ({error})") from None
    try:
        table_names(connection)  # reads the header: "file is not a database" shows here
    except sqlite3.Error as error:
        connection.close()
        raise BlogmlError(f"{path}: not a SQLite database ({error})") from None
    return connection


def database_file(connection: sqlite3.Connection) -> str:
    """The file behind `connection`, for messages."""
    return connection.execute("PRAGMA database_list").fetchone()[2]


def table_names(connection: sqlite3.Connection) -> set[str]:
    """The database's tables, lower-cased (SQLite matches table names case-insensitively)."""
    return {name.lower() for (name,) in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}


def raise_problems(problems: list[str]) -> None:
    """BlogmlError listing the first problems and counting the rest, if there are any."""
    if problems:
        more = len(problems) - _PROBLEMS_SHOWN
        raise BlogmlError("\n".join(problems[:_PROBLEMS_SHOWN])
                          + (f"\n... and {more} more" if more > 0 else ""))


def check_gold(connection: sqlite3.Connection,
               items: Iterable[tuple[str, Any, TableLike]]) -> None:
    """BlogmlError naming the first problems unless the database holds the table of every
    (where, gold sql, table record) item and every gold query runs on it. Run it before
    spending compute: a wrong database, a missing table or a gold query that cannot run
    would otherwise make every prediction of it wrong, without a word."""
    present, problems, missing = table_names(connection), [], set()
    for where, gold, record in items:
        table = Table.of(record)
        name = table.name
        if name.lower() not in present:
            if name not in missing:
                problems.append(f"{database_file(connection)}: table {name!r} (id "
                                f"{table.id!r}) is not in the database; {where} needs it")
            missing.add(name)
            continue
        try:
            execute(connection, SQL.parse(gold, len(table.header) or None), table)
        except (MalformedSQL, sqlite3.Error) as error:
            problems.append(f"{where}: gold sql cannot run on table {name!r} ({error})")
    raise_problems(problems)


def score(pairs: Iterable[tuple[Any, Mapping[str, Any], TableLike]],
          connection: sqlite3.Connection) -> dict[str, float]:
    """Metrics over (raw prediction, gold sql, table) triples.

    Returns lf_accuracy, ex_accuracy, score (their mean), one `<component>_accuracy` per
    component, and the counts.
    """
    totals = {"lf": 0, "ex": 0, "malformed": 0, **{name: 0 for name in COMPONENTS}}
    count = 0
    for raw, gold_raw, record in pairs:
        count += 1
        table = Table.of(record)
        gold = SQL.parse(gold_raw)
        try:
            pred = SQL.parse(raw, len(table.header) or None)
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
