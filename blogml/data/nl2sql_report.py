"""The data report of `blogml data check nl2sql`: the reader's findings and the value
alignment of every split, in one place above both (`nl2sql` reads, `nl2sql_values` aligns)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blogml.data.nl2sql import SPLITS, database_problems, layout_help, load_split, split_paths
from blogml.data.nl2sql_values import alignment_report
from blogml.errors import BlogmlError


def check_dataset(root: str | Path) -> dict[str, Any]:
    """The data report of `blogml data check nl2sql`: per split present, counts, invalid
    records, database problems and value alignment (None for a split without sql).

    BlogmlError if `root` holds none of the splits.
    """
    root = Path(root)
    if not root.is_dir():
        raise BlogmlError(f"{root}: not a folder; {layout_help(root)}")
    present = [split for split in SPLITS
               if any(path.exists() for path in split_paths(root, split))]
    if not present:
        raise BlogmlError(f"{root}: no NL2SQL split found (looked for "
                          f"{', '.join(str(split_paths(root, s)[0]) for s in SPLITS)}); "
                          f"{layout_help(root)}")
    report: dict[str, Any] = {}
    for name in present:
        split = load_split(root, name, require_sql=name != "test")
        with_sql = any(question.sql is not None for question in split.questions)
        alignment = alignment_report(split) if with_sql else None
        report[name] = {
            "questions": len(split.questions),
            "tables": len(split.tables),
            "invalid": [record.to_dict() for record in split.invalid],
            "alignment": alignment,
            # Questions whose every condition value was located: they train every head.
            "questions_aligned": alignment["questions_fully_aligned"] if alignment else None,
            "db": str(split.db_path) if split.db_path else None,
            "db_problems": database_problems(split),
        }
    return {"splits": report}
