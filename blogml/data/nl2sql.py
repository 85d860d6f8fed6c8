"""Reading the NL2SQL competition (TableQA) files: JSON-lines questions and tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from blogml.errors import BlogmlError


def read_jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    """One JSON object per non-empty line; BlogmlError naming the file and line otherwise."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise BlogmlError(f"{path}: cannot read the {what} ({error.strerror})") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
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
