"""The official evaluation of the first Chinese NL2SQL challenge, re-implemented.

`blogml score --official` reports these numbers beside blogml's own, so that a result can
be compared with the leaderboard's. The source is ZhuiyiTechnology/nl2sql_baseline with its
execution-accuracy fix of 28 June 2019 (Python 3 branch): logical form is `SQLNet.check_acc`
(sqlnet/model/sqlnet.py), execution is `DBEngine.execute` (sqlnet/lib/dbengine.py) compared
in `epoch_acc` (sqlnet/utils.py). The DBEngine before that fix bound values by column name
(`where_map['col_n'] = val`: two conditions on one column both got the last value),
lowercased them and parsed numbers for real columns (`parse_decimal`, `num_re`), and
compared rows in selection order; the fix replaced all of that with the rules below, quirks
included, each with where it comes from:

Logical form (`check_acc`), on the JSON values as they are:
- `cond_conn_op` must be equal, even for one condition or none: 0 and 1 differ
  (`if where_rela_gt != where_rela_pred`).
- `len(sel)` must be equal, and `set(sel)` (`if set(sel_pred) != set(sel_gt)`).
- aggregations are compared through `{sel: agg}` (a column selected twice keeps its last
  aggregation), listed in sorted column order (`pred_sel_dict`, `agg_pred = [...]`).
- `len(conds)` must be equal; then the conditions are keyed by column, `{col: op}` and
  `{col: value}` (`cond_op_pred[p[0]] = p[1]`): of two conditions on one column only the
  last counts, so their order matters and swapping their values is wrong. Columns, then
  operators and values in sorted column order, must be equal.
- values are compared as exact JSON values (`where_val_pred != where_val_gt`): "15" and
  "15.0" differ, so do "15" and 15; no lowercasing (`gen_cond_str` lowercases but is unused).
- a prediction `check_acc` crashes on (a missing key, an unhashable column) is wrong
  (`except: badcase += 1; continue`: there its whole batch is skipped, LF and EX alike;
  here only that question, so that a score does not depend on the batch size).

Execution (`DBEngine.execute`, then `ex_acc_num += (ret_gt == ret_pred)`):
- the table is `Table_<table_id>` of the question, not the tables file's `name`
  (`table_id = 'Table_{}'.format(table_id)`), pasted unquoted.
- connector 0 with more than one condition returns the marker "Error1"; no selection, no
  aggregation or no condition returns "Error2"; a query SQLite rejects returns "Error3"
  (`return 'Error1'`, `'Error2'`, `except: return 'Error3'`). Markers compare like results:
  a prediction with the gold query's error counts as right, one without it as wrong.
- the connector joins the conditions: 1 AND, 2 OR, 0 nothing (`rela_dict`).
- each selection is `AGG(col_n)` or `(col_n)`, over `zip(sel, agg)` (the shorter wins).
- a value is pasted in double quotes, `col_n == "value"` (`where_part.append(...)`), with no
  number parsing and no lowercasing. SQLite reads a double-quoted word that names a column
  (or rowid) as that column, anything else as text without affinity: against a real column
  numeric-looking text compares as a number ("15" and "15.0" both match 15, "1,000" or
  "15万" nothing), against a text column as text.
- each result row is read as a dict by column label (`out.as_dict()`), so a (sel, agg) pair
  selected twice gives one value; its values are sorted by `str` (`tuple(sorted(i.values(),
  key=lambda x: str(x)))`), so selection order does not matter; the rows keep SQLite's order.
- a prediction `execute` crashes on (an unknown aggregation, operator or connector code, a
  missing key, a column index that is not a number) is wrong (`except: ret_pred = None`).
- the competition score is the mean of the two accuracies (the challenge's rule; the
  baseline prints them apart).

Where this module departs from the code, and why: values and names are never pasted.
Values are bound as text, which SQLite compares exactly as it does an affinity-less literal;
a value that names a column is compared with that column, as SQLite resolves the quoted
word; a value containing a double quote, which breaks (or rewrites) the pasted query, is
counted as "Error3". Column names come only from the table's own schema (a missing one is
"Error3", as SQLite's "no such column"), and a table the official query could not reach
(missing, or an id that is no plain identifier, which would make every query "Error3" and
every prediction "right") is an error instead of a score.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from blogml.data.nl2sql_sql import AGGREGATIONS, CONNECTORS, OPERATORS, PLAIN_IDENTIFIER
from blogml.errors import BlogmlError
from blogml.metrics.nl2sql import database_file, raise_problems, table_names

ERROR_CONNECTOR = "Error1"  # several conditions and connector 0
ERROR_EMPTY = "Error2"  # no selection, aggregation or condition
ERROR_QUERY = "Error3"  # the query does not run
_AGGREGATION = dict(enumerate(AGGREGATIONS))  # dicts: an unknown code is a crash, as there
_OPERATOR = dict(enumerate(OPERATORS))
_CONNECTOR = {code: f" {name} " if name else "" for code, name in enumerate(CONNECTORS)}
_ROWID = {"rowid", "oid", "_rowid_"}
_CRASHES = (KeyError, TypeError, ValueError, IndexError)  # what malformed input raises

Result = list[tuple] | str


def table_name(table_id: str) -> str:
    """The table the official evaluation queries for a question's `table_id`."""
    return f"Table_{table_id}"


def _form(sql: Mapping[str, Any]) -> tuple:
    """What `check_acc` compares, in one value (raises on what it would crash on)."""
    aggregation = dict(zip(sql["sel"], sql["agg"]))
    conditions = {cond[0]: (cond[1], cond[2]) for cond in sql["conds"]}
    return (sql["cond_conn_op"], len(sql["sel"]), set(sql["sel"]),
            [aggregation[c] for c in sorted(aggregation)], len(sql["conds"]),
            set(conditions), [conditions[c] for c in sorted(conditions)])


def logical_form_equal(pred: Any, gold: Mapping[str, Any]) -> bool:
    """`check_acc`'s verdict on one prediction (see the module docstring)."""
    try:
        return _form(pred) == _form(gold)
    except _CRASHES:
        return False


def _columns(connection: sqlite3.Connection, table_id: str) -> set[str]:
    """Lower-cased column names of the table, as SQLite resolves them."""
    return {name.lower() for (name,) in connection.execute(
        "SELECT name FROM pragma_table_info(?)", [table_name(table_id)])}


def _operand(value: str, columns: set[str]) -> tuple[str, list[str]]:
    """SQL and parameters for a pasted `"value"`: the column it names, else bound text."""
    name = value.lower()
    return (f'"{name}"', []) if name in columns or name in _ROWID else ("?", [value])


def execute(connection: sqlite3.Connection, table_id: str, sql: Any) -> Result:
    """`DBEngine.execute`: rows (values sorted by `str`) or an error marker. Raises on what
    the official code crashes on."""
    sel, agg, conds, conn = sql["sel"], sql["agg"], sql["conds"], sql["cond_conn_op"]
    if conn == 0 and len(conds) > 1:
        return ERROR_CONNECTOR
    if len(sel) == 0 or len(conds) == 0 or len(agg) == 0:
        return ERROR_EMPTY
    joiner = _CONNECTOR[conn]
    selected = [(_AGGREGATION[a], f"col_{c + 1}") for c, a in zip(sel, agg)]
    where = [(f"col_{c + 1}", _OPERATOR[op], str(value)) for c, op, value in conds]
    columns = _columns(connection, table_id)
    names = [name for _, name in selected] + [name for name, _, _ in where]
    if any(name not in columns for name in names) or any('"' in v for _, _, v in where):
        return ERROR_QUERY
    clauses, parameters = [], []
    for name, op, value in where:
        operand, bound = _operand(value, columns)
        clauses.append(f'"{name}" {op} {operand}')
        parameters += bound
    expressions = dict.fromkeys(f'{a}("{name}")' for a, name in selected)  # one per label
    query = (f'SELECT {", ".join(expressions)} FROM "{table_name(table_id)}" '
             f'WHERE {joiner.join(clauses)}')
    try:
        rows = connection.execute(query, parameters).fetchall()
    except sqlite3.Error:
        return ERROR_QUERY
    return [tuple(sorted(row, key=str)) for row in rows]


def execution_equal(connection: sqlite3.Connection, where: str, pred: Any,
                    gold: Mapping[str, Any], table_id: str) -> bool:
    """`epoch_acc`'s verdict: equal results or equal markers; a crash is wrong. Gold sql the
    official code would crash on is a BlogmlError naming `where`."""
    try:
        expected = execute(connection, table_id, gold)
    except _CRASHES as error:
        raise BlogmlError(f"{where}: the official evaluation cannot read this gold sql "
                          f"({type(error).__name__}: {error})") from None
    try:
        return execute(connection, table_id, pred) == expected
    except _CRASHES:
        return False


def check_tables(connection: sqlite3.Connection, table_ids: set[str]) -> None:
    """BlogmlError unless every `Table_<table_id>` is a plain identifier in the database:
    otherwise every official query on it would fail alike and count as right."""
    present = table_names(connection)
    raise_problems([f"{database_file(connection)}: table {table_name(t)!r}, which the official "
                    f"evaluation queries for table_id {t!r}, is not in the database"
                    for t in sorted(table_ids, key=str)
                    if not PLAIN_IDENTIFIER.match(table_name(t))
                    or table_name(t).lower() not in present])


def score(items: Sequence[tuple[str, Any, Mapping[str, Any], str]],
          connection: sqlite3.Connection) -> dict[str, float]:
    """`lf_accuracy`, `ex_accuracy` and `score` (their mean) of (where, raw prediction, gold
    sql, table_id) items, as the official evaluation computes them."""
    if not items:
        raise ValueError("nothing to score")
    check_tables(connection, {table_id for _, _, _, table_id in items})
    lf = sum(logical_form_equal(pred, gold) for _, pred, gold, _ in items) / len(items)
    ex = sum(execution_equal(connection, where, pred, gold, table_id)
             for where, pred, gold, table_id in items) / len(items)
    return {"lf_accuracy": lf, "ex_accuracy": ex, "score": (lf + ex) / 2}
