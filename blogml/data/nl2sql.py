"""Reading the NL2SQL competition (TableQA) files: JSON-lines questions and tables.

A dataset folder holds one sub-folder per split, `DIR/{split}/{split}.json` (questions),
`DIR/{split}/{split}.tables.json` (tables) and `DIR/{split}/{split}.db` (SQLite, one table
per table, `col_1..col_n`). `load_split` validates every record: an unusable one is kept
as an `Invalid` (file, line, a reason naming the field) so that the data report can say
what was left out and why; nothing is dropped silently and no bad line stops a load.
`read_jsonl`/`read_tables` are the strict readers scoring uses (any bad line is an error).
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blogml.errors import BlogmlError

SPLITS = ("train", "val", "test")
AGGREGATION_CODES = "0 none, 1 AVG, 2 MAX, 3 MIN, 4 COUNT, 5 SUM"
OPERATOR_CODES = "0 >, 1 <, 2 ==, 3 !="
CONNECTOR_CODES = "0 none, 1 and, 2 or"
COLUMN_TYPES = ("text", "real")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_]+$")  # what blogml.metrics.nl2sql can query


def read_jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    """One JSON object per non-empty line; BlogmlError naming the file and line otherwise."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise BlogmlError(f"{path}: cannot read the {what} ({error.strerror})") from None
    except UnicodeDecodeError as error:  # a binary, or a legacy-encoded export
        raise BlogmlError(f"{path}: not UTF-8 text (byte {error.start + 1}); JSON lines must "
                          "be UTF-8: save it as UTF-8") from None
    records = []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 in text
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise BlogmlError(f"{path}:{number}: {what} line is not valid JSON "
                              f"({error.msg})") from None
        if not isinstance(record, dict):
            raise BlogmlError(f"{path}:{number}: {what} line must be a JSON object")
        records.append(record)
    return records


def tables_path_for(questions: Path) -> Path:
    """`val/val.json` -> `val/val.tables.json`, the competition's naming."""
    return questions.with_name(questions.name.removesuffix(".json") + ".tables.json")


def read_tables(path: Path) -> dict[str, dict[str, Any]]:
    """Tables by id; each must have an id, a name and a header."""
    tables = {}
    for number, table in enumerate(read_jsonl(path, "table"), start=1):
        missing = [key for key in ("id", "name", "header") if key not in table]
        if missing:
            raise BlogmlError(f"{path}: table {number} lacks {', '.join(missing)}")
        tables[table["id"]] = table
    return tables


# ---- validated loading ----------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """One table of a tables file: `types[i]` is "text" or "real" for column i."""

    id: str
    name: str
    title: str
    header: list[str]
    types: list[str]
    rows: list[list]


@dataclass(frozen=True)
class Question:
    """One question line; `sql` as in the file (validated), None where the split has none."""

    line: int
    table_id: str
    question: str
    sql: dict | None


@dataclass(frozen=True)
class Invalid:
    """A record that cannot be used: its file, its line (1-based) and what is wrong."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "reason": self.reason}


@dataclass
class Split:
    """The usable questions and tables of one split, and every record left out."""

    name: str
    questions: list[Question]
    tables: dict[str, Table]
    invalid: list[Invalid]
    db_path: Path | None

    def table_of(self, question: Question) -> Table:
        return self.tables[question.table_id]


def split_paths(root: str | Path, split: str) -> tuple[Path, Path, Path]:
    """(questions, tables, database) of a split: DIR/val/val.json, DIR/val/val.tables.json,
    DIR/val/val.db."""
    folder = Path(root) / split
    return folder / f"{split}.json", folder / f"{split}.tables.json", folder / f"{split}.db"


def layout_help(root: str | Path, split: str | None = None) -> str:
    """The expected layout, for error messages: the files of `split`, or of any split."""
    name = split or "{split}"
    folder = Path(root) / name
    return (f"an NL2SQL split is {folder}/{name}.json (questions), {folder}/{name}.tables.json"
            f" (tables) and {folder}/{name}.db (SQLite)"
            + ("" if split else f", {{split}} one of {', '.join(SPLITS)}")
            + "; write demo data in this layout with `blogml data synth nl2sql --out DIR`")


def _records(path: Path) -> list[tuple[int, dict[str, Any] | str]]:
    """(line number, object) per non-empty line, or (line number, reason) for a line that
    is not a JSON object: bad lines are reported with the rest, not raised."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BlogmlError(f"{path}: not found") from None
    except OSError as error:
        raise BlogmlError(f"{path}: cannot read ({error.strerror})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    records: list[tuple[int, dict[str, Any] | str]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            records.append((number, f"not UTF-8 text (byte {error.start + 1})"))
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            records.append((number, f"not valid JSON ({error.msg} at column {error.colno})"))
            continue
        if not isinstance(record, dict):
            records.append((number, f"must be a JSON object, got {type(record).__name__}"))
            continue
        records.append((number, record))
    return records


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _table_problems(record: dict[str, Any]) -> list[str]:
    """What makes a table record unusable; empty if it is fine."""
    problems = []
    for key in ("id", "name"):
        if key not in record:
            problems.append(f"{key}: missing")
        elif not isinstance(record[key], str) or not record[key].strip():
            problems.append(f"{key}: must be a non-empty string, got {record[key]!r}")
    name = record.get("name")
    if isinstance(name, str) and name.strip() and not _PLAIN_NAME.match(name):
        problems.append(f"name: {name!r} is not a plain SQLite identifier (letters, digits, _)")
    if not isinstance(record.get("title", ""), str):
        problems.append(f"title: must be a string, got {_kind(record['title'])}")
    header, types, rows = record.get("header"), record.get("types"), record.get("rows")
    if header is None:
        problems.append("header: missing")
    elif not isinstance(header, list) or not header:
        problems.append("header: must be a non-empty list of column names")
    else:
        problems += [f"header[{i}]: must be a string, got {_kind(h)}"
                     for i, h in enumerate(header) if not isinstance(h, str)]
    width = len(header) if isinstance(header, list) else None
    if types is None:
        problems.append("types: missing")
    elif not isinstance(types, list):
        problems.append("types: must be a list of \"text\" or \"real\"")
    else:
        if width is not None and len(types) != width:
            problems.append(f"types: length {len(types)} differs from header ({width})")
        problems += [f"types[{i}]: {t!r} is not text or real" for i, t in enumerate(types)
                     if t not in COLUMN_TYPES]
    if rows is None:
        problems.append("rows: missing")
    elif not isinstance(rows, list):
        problems.append("rows: must be a list of rows")
    else:
        for i, row in enumerate(rows):
            if not isinstance(row, list):
                problems.append(f"rows[{i}]: must be a list, got {_kind(row)}")
            elif width is not None and len(row) != width:
                problems.append(f"rows[{i}]: length {len(row)} differs from header ({width})")
            else:
                problems += [f"rows[{i}][{j}]: cell must be a string, number or null, "
                             f"got {_kind(cell)}" for j, cell in enumerate(row)
                             if isinstance(cell, (list, dict, bool))]
            if len(problems) > 5:
                break
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


def sql_problems(sql: Any, table: Table | None) -> list[str]:
    """What makes a question's `sql` unusable for `table` (None: table unknown, columns are
    then checked for type only); empty if it is fine."""
    if not isinstance(sql, dict):
        return [f"sql: must be an object, got {_kind(sql)}"]
    problems = []
    missing = [key for key in ("sel", "agg", "cond_conn_op", "conds") if key not in sql]
    problems += [f"sql.{key}: missing" for key in missing]
    sel, agg = sql.get("sel"), sql.get("agg")
    if "sel" not in missing:
        if not isinstance(sel, list) or not sel:
            problems.append(f"sql.sel: must be a non-empty list of column indexes, got {sel!r}")
        else:
            problems += [p for i, c in enumerate(sel)
                         if (p := _column_problem(f"sql.sel[{i}]", c, table))]
    if "agg" not in missing:
        if not isinstance(agg, list):
            problems.append(f"sql.agg: must be a list of aggregation codes, got {agg!r}")
        else:
            if isinstance(sel, list) and len(agg) != len(sel):
                problems.append(f"sql.agg: length {len(agg)} differs from sql.sel ({len(sel)})")
            problems += [f"sql.agg[{i}]: unknown aggregation code {a!r} ({AGGREGATION_CODES})"
                         for i, a in enumerate(agg) if not _is_int(a) or a not in range(6)]
    conn = sql.get("cond_conn_op")
    if "cond_conn_op" not in missing and (not _is_int(conn) or conn not in range(3)):
        problems.append(f"sql.cond_conn_op: unknown connector code {conn!r} ({CONNECTOR_CODES})")
    conds = sql.get("conds")
    if "conds" not in missing:
        if not isinstance(conds, list):
            problems.append(f"sql.conds: must be a list of [column, operator, value], "
                            f"got {conds!r}")
        else:
            for i, cond in enumerate(conds):
                where = f"sql.conds[{i}]"
                if not isinstance(cond, list) or len(cond) != 3:
                    problems.append(f"{where}: must be [column, operator, value], got {cond!r}")
                    continue
                column, op, value = cond
                if problem := _column_problem(f"{where}[0]", column, table):
                    problems.append(problem)
                if not _is_int(op) or op not in range(4):
                    problems.append(f"{where}[1]: unknown operator code {op!r} ({OPERATOR_CODES})")
                if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                    problems.append(f"{where}[2]: value must be a string or number, "
                                    f"got {_kind(value)}")
                elif not str(value).strip():
                    problems.append(f"{where}[2]: empty value")
    return problems


def read_tables_checked(path: Path) -> tuple[dict[str, Table], dict[str, int], list[Invalid]]:
    """The usable tables of a tables file by id, the lines of the unusable ones by id (so a
    question can say its table is invalid), and the invalid records."""
    invalid: list[Invalid] = []
    tables: dict[str, Table] = {}
    table_lines: dict[str, int] = {}
    bad_tables: dict[str, int] = {}
    for line, record in _records(path):
        if isinstance(record, str):
            invalid.append(Invalid(str(path), line, record))
            continue
        problems = _table_problems(record)
        table_id = record.get("id")
        if not problems and table_id in table_lines:
            problems = [f"id {table_id!r}: duplicate of line {table_lines[table_id]}"]
        if problems:
            invalid.append(Invalid(str(path), line, "; ".join(problems)))
            if isinstance(table_id, str) and table_id not in table_lines:
                bad_tables.setdefault(table_id, line)
            continue
        table_lines[table_id] = line
        tables[table_id] = Table(id=table_id, name=record["name"],
                                 title=record.get("title", ""), header=list(record["header"]),
                                 types=list(record["types"]), rows=list(record["rows"]))
    return tables, bad_tables, invalid


def _read_questions(path: Path, tables: dict[str, Table], bad_tables: dict[str, int],
                    tables_name: str, require_sql: bool) -> tuple[list[Question], list[Invalid]]:
    questions: list[Question] = []
    invalid: list[Invalid] = []
    for line, record in _records(path):
        if isinstance(record, str):
            invalid.append(Invalid(str(path), line, record))
            continue
        problems = []
        table_id, text = record.get("table_id"), record.get("question")
        table = None
        if table_id is None:
            problems.append("table_id: missing")
        elif not isinstance(table_id, str):
            problems.append(f"table_id: must be a string, got {table_id!r}")
        elif table_id in tables:
            table = tables[table_id]
        elif table_id in bad_tables:
            problems.append(f"table_id {table_id!r}: its table is invalid "
                            f"({tables_name}:{bad_tables[table_id]})")
        else:
            problems.append(f"table_id {table_id!r} not in {tables_name}")
        if text is None:
            problems.append("question: missing")
        elif not isinstance(text, str):
            problems.append(f"question: must be a string, got {_kind(text)}")
        elif not text.strip():
            problems.append("question: empty")
        if "sql" in record:
            problems += sql_problems(record["sql"], table)
        elif require_sql:
            problems.append("sql: missing (training and evaluation need it; only test "
                            "questions may go without)")
        if problems:
            invalid.append(Invalid(str(path), line, "; ".join(problems)))
            continue
        questions.append(Question(line=line, table_id=table_id, question=text,
                                  sql=record.get("sql")))
    return questions, invalid


def read_questions(path: str | Path, *, tables_path: str | Path | None = None,
                   require_sql: bool = True
                   ) -> tuple[list[Question], dict[str, Table], list[Invalid]]:
    """Any questions file with its tables file (by default next to it: `x.json` ->
    `x.tables.json`), validated like `load_split`: (questions, tables, invalid records of
    both files, tables file first). BlogmlError naming the path if either file is missing."""
    path = Path(path)
    tables_path = Path(tables_path) if tables_path else tables_path_for(path)
    for required, what in ((path, "questions"), (tables_path, "tables")):
        if not required.is_file():
            raise BlogmlError(f"{required}: {what} file not found; questions are JSON lines "
                              "`{\"table_id\": ..., \"question\": ...}` with their tables in "
                              f"{tables_path_for(path).name} next to them")
    tables, bad_tables, invalid = read_tables_checked(tables_path)
    questions, bad_questions = _read_questions(path, tables, bad_tables, tables_path.name,
                                               require_sql)
    return questions, tables, invalid + bad_questions


def load_split(root: str | Path, split: str, *, require_sql: bool = True) -> Split:
    """Read and validate one split; BlogmlError (naming the path and the layout) when its
    questions or tables file is missing. The database is optional (db_path None)."""
    questions_path, tables_path, db_path = split_paths(root, split)
    for path in (questions_path, tables_path):
        if not path.is_file():
            raise BlogmlError(f"{path}: not found; {layout_help(root, split)}")
    questions, tables, invalid = read_questions(questions_path, tables_path=tables_path,
                                                require_sql=require_sql)
    return Split(name=split, questions=questions, tables=tables, invalid=invalid,
                 db_path=db_path if db_path.is_file() else None)


def database_problems(split: Split) -> list[str]:
    """Tables of the split that its SQLite file lacks or holds with another shape (so
    execution accuracy could not run on them); empty if the file has them all."""
    if split.db_path is None:
        return []
    try:
        connection = sqlite3.connect(f"{split.db_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            present = {name for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            problems = []
            for table in split.tables.values():
                if table.name not in present:
                    problems.append(f"{split.db_path}: table {table.name!r} (id {table.id!r}) "
                                    "missing")
                    continue
                columns = [row[1] for row in connection.execute(
                    f'PRAGMA table_info("{table.name}")')]
                expected = [f"col_{i + 1}" for i in range(len(table.header))]
                if columns != expected:
                    problems.append(f"{split.db_path}: table {table.name!r} has columns "
                                    f"{', '.join(columns)}; expected {', '.join(expected)}")
                    continue
                (count,) = connection.execute(f'SELECT COUNT(*) FROM "{table.name}"').fetchone()
                if count != len(table.rows):
                    problems.append(f"{split.db_path}: table {table.name!r} has {count} rows; "
                                    f"the tables file has {len(table.rows)}")
            return problems
        finally:
            connection.close()
    except sqlite3.Error as error:
        return [f"{split.db_path}: not a usable SQLite database ({error})"]
