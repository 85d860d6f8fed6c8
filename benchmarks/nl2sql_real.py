"""NL2SQL on a folder in the competition layout: what the pipeline keeps of the gold SQL.

For each split with sql, overall and on a list of its question lines (by default
DIR/<split>_real_table_lines.txt when it exists: the questions asked on real tables):
- condition values by alignment kind, the share that fail, and the questions with every
  value located;
- training questions with labels for every head but their unlocated values (every question
  that fits data.max_length);
- the ceiling: the labels decoded back to SQL and scored (LF, EX, score), first with no
  decoding rule, then adding the seed's rules one at a time (snap to cells, `>`/`<` only
  for numbers, a connector consistent with the conditions).
Targets (issue 12): train labelled >= 0.99; val failed <= 0.04, questions aligned >= 0.93;
val ceiling LF >= 0.88 overall and >= 0.95 on the real-table lines. Prints one JSON line.

    python benchmarks/nl2sql_real.py --data ../shared/tableqa-sample
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from blogml.data.nl2sql import Split, load_split
from blogml.data.nl2sql_values import alignment_report
from blogml.data.wordpiece import CHINESE_VOCAB, WordPieceTokenizer
from blogml.runners.nl2sql.ceiling import gold_labels, split_ceiling
from blogml.runners.nl2sql.decode import DecodeRules

# Each decoding rule added to the ones before it, as the seed applies them.
RULE_STEPS = {
    "no_rules": DecodeRules(snap_to_cells=False, compare_numbers_only=False,
                            consistent_connector=False),
    "+snap_to_cells": DecodeRules(snap_to_cells=True, compare_numbers_only=False,
                                  consistent_connector=False),
    "+compare_numbers_only": DecodeRules(snap_to_cells=True, compare_numbers_only=True,
                                         consistent_connector=False),
    "+consistent_connector": DecodeRules(),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder in the competition layout")
    parser.add_argument("--lines", action="append", default=[], metavar="SPLIT=FILE",
                        help="1-based question lines of SPLIT to report apart (default: "
                             "DIR/<split>_real_table_lines.txt where it exists)")
    parser.add_argument("--vocab", default=str(CHINESE_VOCAB))
    parser.add_argument("--max-length", type=int, default=160, help="the seed's 160")
    return parser.parse_args()


def _subset(split: Split, lines: set[int]) -> Split:
    return dataclasses.replace(split, questions=[q for q in split.questions if q.line in lines])


def _alignment(split: Split) -> dict[str, Any]:
    report = alignment_report(split)
    return {**{kind: round(share, 4) for kind, share in report.items()
               if isinstance(share, float)}, "values": report["values"]}


def _figures(split: Split, tokenizer: WordPieceTokenizer, max_length: int) -> dict[str, Any]:
    questions = [q for q in split.questions if q.sql is not None]
    features = gold_labels(split, tokenizer, max_length)
    ceilings = {name: {metric: round(value, 4) for metric, value in
                       split_ceiling(split, features, rules).items()}
                for name, rules in RULE_STEPS.items()}
    return {"questions": len(questions), "alignment": _alignment(split),
            "labelled": round(len(features.questions) / max(len(questions), 1), 4),
            "fully_labelled": round((len(features.questions) - len(features.partly_labelled))
                                    / max(len(questions), 1), 4),
            "ceiling": ceilings}


def main() -> None:
    args = parse_args()
    root = Path(args.data)
    line_files = dict(item.split("=", 1) for item in args.lines)
    tokenizer = WordPieceTokenizer(args.vocab)
    start = time.perf_counter()
    splits: dict[str, Any] = {}
    for name in ("train", "val"):
        if not (root / name / f"{name}.json").is_file():
            continue
        split = load_split(root, name)
        splits[name] = {"all": _figures(split, tokenizer, args.max_length)}
        lines_file = Path(line_files.get(name, root / f"{name}_real_table_lines.txt"))
        if lines_file.is_file():
            lines = {int(x) for x in lines_file.read_text().split()}
            splits[name][lines_file.stem] = _figures(_subset(split, lines), tokenizer,
                                                     args.max_length)
    print(json.dumps({"benchmark": "nl2sql_real", "data": str(root),
                      "max_length": args.max_length, "splits": splits,
                      "seconds": round(time.perf_counter() - start, 1)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
