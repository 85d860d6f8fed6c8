"""The pipeline's ceiling: the gold SQL encoded as training labels, decoded back and scored.

A model can at best reproduce its labels, so decoding the labels themselves (as if every
head were perfect) shows what value alignment, tokenisation, `max_length` and the decoding
rules lose before any compute is spent: a value that could not be located, a span cut at a
word piece's edge, a snapped cell that is not the gold one, a question left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from blogml.data.nl2sql import Split, load_split
from blogml.data.nl2sql_sql import NOT_A_VALUE, NOT_SELECTED, NUM_CONNECTORS
from blogml.data.wordpiece import WordPieceTokenizer
from blogml.runners.nl2sql.decode import DecodeRules, decode
from blogml.runners.nl2sql.features import Features, encode
from blogml.runners.nl2sql.scoring import score_split

CEILING_METRICS = ("lf_accuracy", "ex_accuracy", "score")


def _certain(labels: np.ndarray, classes: int) -> np.ndarray:
    """Logits that put all the probability on `labels` (a batch of one)."""
    return np.where(np.eye(classes, dtype=bool)[labels], 0.0, -1e4).astype(np.float32)[None]


def _shared(slots: np.ndarray, classes: int) -> np.ndarray:
    """Link logits that share each token's probability equally among its columns (the
    link head's target); -1 slots are unused."""
    chosen = (np.eye(classes + 1, dtype=bool)[slots][..., :classes]).any(-2)
    return np.where(chosen, 0.0, -1e4).astype(np.float32)[None]


def label_outputs(labels: dict[str, np.ndarray], row: int, num_columns: int
                  ) -> dict[str, np.ndarray]:
    """Head outputs that say exactly what row `row` of the labels says."""
    return {"conn": _certain(labels["conn"][row], NUM_CONNECTORS),
            "agg": _certain(labels["agg"][row], NOT_SELECTED + 1),
            "op": _certain(labels["op"][row], NOT_A_VALUE + 1),
            "link": _shared(labels["link"][row], num_columns)}


def gold_labels(split: Split, tokenizer: WordPieceTokenizer, max_length: int) -> Features:
    """The training labels of every question of `split` with sql (what the ceiling decodes:
    encode once, then score as many decoding rules as wanted)."""
    questions = [question for question in split.questions if question.sql is not None]
    return encode(questions, split.tables, tokenizer, max_length, labels=True)


def split_ceiling(split: Split, labels: Features,
                  rules: DecodeRules = DecodeRules()) -> dict[str, float]:
    """LF, EX and score of the split's `gold_labels` decoded back to SQL, over every
    question with `sql` (one left out of the labels counts wrong). Needs the split's
    database."""
    num_columns = labels.inputs["header_mask"].shape[1] if labels.questions else 1
    decoded = {}
    for row, question in enumerate(labels.questions):
        outputs = label_outputs(labels.labels, row, num_columns)
        decoded[question.line] = decode(outputs, 0, question.question,
                                        labels.token_spans[row],
                                        split.tables[question.table_id], rules)
    metrics = score_split(split, decoded)
    return {name: metrics[name] for name in CEILING_METRICS}


def add_ceilings(report: dict[str, Any], root: str | Path, vocab: str | Path,
                 max_length: int, rules: DecodeRules = DecodeRules()) -> dict[str, Any]:
    """`check_dataset`'s report with a `ceiling` for every split that has sql and a
    database (None for the others)."""
    tokenizer = WordPieceTokenizer(vocab)
    for name, split_report in report["splits"].items():
        split = load_split(root, name, require_sql=name != "test")
        usable = split.db_path is not None and any(q.sql for q in split.questions)
        split_report["ceiling"] = (split_ceiling(split, gold_labels(split, tokenizer,
                                                                    max_length), rules)
                                   if usable else None)
    return report
