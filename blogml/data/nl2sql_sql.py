"""The NL2SQL competition's vocabulary, written once: the codes of its `sql` objects, the
classes of the seed's heads derived from them, the checked `SQL` structure and `Table`.

Reading and validation (`blogml.data.nl2sql`), the model's heads (`blogml.models.nl2sql`),
labels and decoding (`blogml.runners.nl2sql`) and both metrics (`blogml.metrics`) import
these, so that a code means the same everywhere and every message lists exactly the codes
the checks accept. Keras-free and importing nothing of blogml: anything may import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# A code is its index, as in the competition's files; "" is "none".
AGGREGATIONS = ("", "AVG", "MAX", "MIN", "COUNT", "SUM")
OPERATORS = (">", "<", "==", "!=")  # as the official evaluation writes them (SQLite: == is =)
CONNECTORS = ("", "AND", "OR")  # "" for one condition (or none)
COLUMN_TYPES = ("text", "real")
PLAIN_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")  # a table name the metrics can query
TABLE_KEYS = ("id", "name", "header")  # what every table record must have


def _codes(names: Iterable[str]) -> str:
    """"0 none, 1 AVG, ...": the codes, for messages."""
    return ", ".join(f"{code} {name or 'none'}" for code, name in enumerate(names))


AGGREGATION_CODES = _codes(AGGREGATIONS)
OPERATOR_CODES = _codes(OPERATORS)
CONNECTOR_CODES = _codes(name.lower() for name in CONNECTORS)

# The seed's heads (`blogml.models.nl2sql`): one class per code, plus "none of them" for a
# column (not selected) and a question token (not in a condition value).
HEADS = ("conn", "agg", "op", "link")
NUM_CONNECTORS = len(CONNECTORS)
NOT_SELECTED = len(AGGREGATIONS)
NOT_A_VALUE = len(OPERATORS)
LINK_SLOTS = 3  # columns one value mention can serve (PE、PB和PS都大于1: three conditions)


def json_type(value: Any) -> str:
    """The JSON-ish name of a value's type, for messages: "null" for None."""
    return "null" if value is None else type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Table:
    """One table of a tables file: `types[i]` is "text" or "real" for column i."""

    id: str
    name: str
    title: str
    header: list[str]
    types: list[str]
    rows: list[list]

    @classmethod
    def of(cls, table: TableLike) -> Table:
        """`table`, or the tables-file record `table` (with TABLE_KEYS) as a Table. Title,
        types and rows default to empty, as a record scored may lack them (without types,
        every value is compared as text)."""
        if isinstance(table, Table):
            return table
        return cls(id=table["id"], name=table["name"], title=table.get("title", ""),
                   header=table["header"], types=table.get("types", []),
                   rows=table.get("rows", []))


# A table, or a tables-file record of one: what the metrics take (`Table.of` reads both).
TableLike = Table | Mapping[str, Any]


class MalformedSQL(ValueError):
    """A prediction that is not a usable SQL structure (it scores as wrong)."""


@dataclass(frozen=True)
class SQL:
    """A checked `{sel, agg, cond_conn_op, conds}` structure.

    `parse` reads a prediction (or gold sql) for scoring, forgiving what converts (a code
    as "1"); `problems` validates a dataset's gold sql, naming every field that is wrong.
    """

    sel: tuple[int, ...]
    agg: tuple[int, ...]
    conn: int
    conds: tuple[tuple[int, int, str], ...]

    @classmethod
    def parse(cls, raw: Any, num_columns: int | None = None) -> SQL:
        """`raw` as an SQL; MalformedSQL if it is none (`num_columns` bounds the columns)."""
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

    @staticmethod
    def problems(raw: Any, table: Table | None) -> list[str]:
        """What makes a question's `sql` unusable for `table` (None: table unknown, columns
        are then checked for type only); empty if it is fine."""
        if not isinstance(raw, dict):
            return [f"sql: must be an object, got {json_type(raw)}"]
        missing = [key for key in ("sel", "agg", "cond_conn_op", "conds") if key not in raw]
        problems = [f"sql.{key}: missing" for key in missing]
        sel, agg = raw.get("sel"), raw.get("agg")
        if "sel" not in missing:
            if not isinstance(sel, list) or not sel:
                problems.append(f"sql.sel: must be a non-empty list of column indexes, "
                                f"got {sel!r}")
            else:
                problems += [p for i, c in enumerate(sel)
                             if (p := _column_problem(f"sql.sel[{i}]", c, table))]
        if "agg" not in missing:
            if not isinstance(agg, list):
                problems.append(f"sql.agg: must be a list of aggregation codes, got {agg!r}")
            else:
                if isinstance(sel, list) and len(agg) != len(sel):
                    problems.append(f"sql.agg: length {len(agg)} differs from sql.sel "
                                    f"({len(sel)})")
                problems += [f"sql.agg[{i}]: unknown aggregation code {a!r} "
                             f"({AGGREGATION_CODES})" for i, a in enumerate(agg)
                             if not _is_int(a) or a not in range(len(AGGREGATIONS))]
        conn = raw.get("cond_conn_op")
        if "cond_conn_op" not in missing and (not _is_int(conn)
                                              or conn not in range(len(CONNECTORS))):
            problems.append(f"sql.cond_conn_op: unknown connector code {conn!r} "
                            f"({CONNECTOR_CODES})")
        if "conds" not in missing:
            problems += _conditions_problems(raw["conds"], table)
        return problems


def _column_problem(where: str, column: Any, table: Table | None) -> str | None:
    if not _is_int(column):
        return f"{where}: column must be an integer, got {column!r}"
    if table is not None and not 0 <= column < len(table.header):
        return (f"{where}: column {column} out of range for table {table.id!r} with "
                f"{len(table.header)} columns")
    if column < 0:
        return f"{where}: column {column} must be >= 0"
    return None


def _conditions_problems(conds: Any, table: Table | None) -> list[str]:
    """`SQL.problems` of `sql.conds`."""
    if not isinstance(conds, list):
        return [f"sql.conds: must be a list of [column, operator, value], got {conds!r}"]
    problems = []
    for i, cond in enumerate(conds):
        where = f"sql.conds[{i}]"
        if not isinstance(cond, list) or len(cond) != 3:
            problems.append(f"{where}: must be [column, operator, value], got {cond!r}")
            continue
        column, op, value = cond
        if problem := _column_problem(f"{where}[0]", column, table):
            problems.append(problem)
        if not _is_int(op) or op not in range(len(OPERATORS)):
            problems.append(f"{where}[1]: unknown operator code {op!r} ({OPERATOR_CODES})")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            problems.append(f"{where}[2]: value must be a string or number, "
                            f"got {json_type(value)}")
        elif not str(value).strip():
            problems.append(f"{where}[2]: empty value")
    return problems
