"""Reading the NL2SQL competition (TableQA) files: JSON-lines questions and tables.

A dataset folder holds one sub-folder per split, `DIR/{split}/{split}.json` (questions),
`DIR/{split}/{split}.tables.json` (tables) and `DIR/{split}/{split}.db` (SQLite, one table
per table, `col_1..col_n`). `load_split` validates every record: an unusable one is kept
as an `Invalid` (file, line, a reason naming the field) so that the data report can say
what was left out and why; nothing is dropped silently and no bad line stops a load.
Scoring reads strictly instead (`read_jsonl`, `read_tables`): any bad line is an error.
The codes, `SQL` and `Table` are `blogml.data.nl2sql_sql`'s.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blogml.data.nl2sql_sql import COLUMN_TYPES, PLAIN_IDENTIFIER, SQL, TABLE_KEYS, Table, json_type
from blogml.errors import BlogmlError

SPLITS = ("train", "val", "test")
_BOM = b"\xef\xbb\xbf"


def read_jsonl(path: Path, what: str, *, strict: bool = True
               ) -> list[tuple[int, dict[str, Any] | str]]:
    """(line number, object) per non-empty line of a JSON-lines file; a file that cannot be
    read is a BlogmlError.

    Strict (scoring: one bad line would pair every later prediction with another question):
    a file that is not UTF-8 text or a line that is not a JSON object is a BlogmlError
    naming the file and line, `what` naming its records; the file is read as text is (\\r
    ends a line too). Lenient (loading: every bad record is reported with the rest, none
    stops a load): such a line is (line number, reason) instead; a UTF-8 BOM is skipped.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        if strict:
            raise BlogmlError(f"{path}: cannot read the {what} ({error.strerror})") from None
        if isinstance(error, FileNotFoundError):
            raise BlogmlError(f"{path}: not found") from None
        raise BlogmlError(f"{path}: cannot read ({error.strerror})") from None
    if strict:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as error:  # a binary, or a legacy-encoded export
            raise BlogmlError(f"{path}: not UTF-8 text (byte {error.start + 1}); JSON lines "
                              "must be UTF-8: save it as UTF-8") from None
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    else:
        data = data.removeprefix(_BOM)
    records: list[tuple[int, dict[str, Any] | str]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):  # not splitlines: U+2028 in text
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:  # lenient only: strict checked the whole file
            records.append((number, f"not UTF-8 text (byte {error.start + 1})"))
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if strict:
                raise BlogmlError(f"{path}:{number}: {what} line is not valid JSON "
                                  f"({error.msg})") from None
            records.append((number, f"not valid JSON ({error.msg} at column {error.colno})"))
            continue
        if not isinstance(record, dict):
            if strict:
                raise BlogmlError(f"{path}:{number}: {what} line must be a JSON object")
            records.append((number, f"must be a JSON object, got {type(record).__name__}"))
            continue
        records.append((number, record))
    return records


def tables_path_for(questions: Path) -> Path:
    """`val/val.json` -> `val/val.tables.json`, the competition's naming."""
    return questions.with_name(questions.name.removesuffix(".json") + ".tables.json")


def read_tables(path: Path) -> dict[str, Table]:
    """Tables by id, read strictly; each must have an id, a name and a header."""
    tables = {}
    for number, (_, record) in enumerate(read_jsonl(path, "table"), start=1):
        missing = [key for key in TABLE_KEYS if key not in record]
        if missing:
            raise BlogmlError(f"{path}: table {number} lacks {', '.join(missing)}")
        tables[record["id"]] = Table.of(record)
    return tables


# ---- validated loading ----------------------------------------------------------------


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


def _table_problems(record: dict[str, Any]) -> list[str]:
    """What makes a table record unusable; empty if it is fine."""
    problems = []
    for key in ("id", "name"):
        if key not in record:
            problems.append(f"{key}: missing")
        elif not isinstance(record[key], str) or not record[key].strip():
            problems.append(f"{key}: must be a non-empty string, got {record[key]!r}")
    name = record.get("name")
    if isinstance(name, str) and name.strip() and not PLAIN_IDENTIFIER.match(name):
        problems.append(f"name: {name!r} is not a plain SQLite identifier (letters, digits, _)")
    if not isinstance(record.get("title", ""), str):
        problems.append(f"title: must be a string, got {json_type(record['title'])}")
    header, types, rows = record.get("header"), record.get("types"), record.get("rows")
    if header is None:
        problems.append("header: missing")
    elif not isinstance(header, list) or not header:
        problems.append("header: must be a non-empty list of column names")
    else:
        problems += [f"header[{i}]: must be a string, got {json_type(h)}"
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
                problems.append(f"rows[{i}]: must be a list, got {json_type(row)}")
            elif width is not None and len(row) != width:
                problems.append(f"rows[{i}]: length {len(row)} differs from header ({width})")
            else:
                problems += [f"rows[{i}][{j}]: cell must be a string, number or null, "
                             f"got {json_type(cell)}" for j, cell in enumerate(row)
                             if isinstance(cell, (list, dict, bool))]
            if len(problems) > 5:
                break
    return problems


def read_tables_checked(path: Path) -> tuple[dict[str, Table], dict[str, int], list[Invalid]]:
    """The usable tables of a tables file by id, the lines of the unusable ones by id (so a
    question can say its table is invalid), and the invalid records."""
    invalid: list[Invalid] = []
    tables: dict[str, Table] = {}
    table_lines: dict[str, int] = {}
    bad_tables: dict[str, int] = {}
    for line, record in read_jsonl(path, "table", strict=False):
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
        tables[table_id] = Table.of(record)
    return tables, bad_tables, invalid


def _read_questions(path: Path, tables: dict[str, Table], bad_tables: dict[str, int],
                    tables_name: str, require_sql: bool) -> tuple[list[Question], list[Invalid]]:
    questions: list[Question] = []
    invalid: list[Invalid] = []
    for line, record in read_jsonl(path, "question", strict=False):
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
            problems.append(f"question: must be a string, got {json_type(text)}")
        elif not text.strip():
            problems.append("question: empty")
        if "sql" in record:
            problems += SQL.problems(record["sql"], table)
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
