"""Questions and tables -> the seed's model inputs, and training labels from gold SQL.

Layout of one example: `[CLS] question [SEP]` (segment 0) then `[CLS] header [SEP]` for
every column (segment 1), padded to `max_length`. Labels put each condition's operator and
column on the question tokens of its value's span; the span comes from value alignment.

Every question that fits `max_length` trains. Where a condition value cannot be located (a
synonym, a value the question only implies), that condition's tokens are unknown, so the
operator head is masked to the values that were located (`op_mask`): it neither learns that
the unlocated value's tokens are "not a value" nor loses the question's selection,
aggregations, connector and other conditions. Such questions are reported as partly
labelled, with their line and the values missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from blogml.data.nl2sql import Question
from blogml.data.nl2sql_sql import HEADS, LINK_SLOTS, NOT_A_VALUE, NOT_SELECTED, Table
from blogml.data.nl2sql_values import align_conditions
from blogml.data.wordpiece import WordPieceTokenizer

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask", "header_positions", "header_mask",
               "question_mask")
# A label per head, then op_mask: 1 on the question tokens whose operator label is known
# (see the module docstring).
LABEL_NAMES = (*HEADS, "op_mask")


@dataclass
class Features:
    """Model arrays of a list of questions (row i is `questions[i]`)."""

    questions: list[Question]
    inputs: dict[str, np.ndarray]
    labels: dict[str, np.ndarray] | None
    # Character (start, end) in the question of each kept question token (position i + 1).
    token_spans: list[list[tuple[int, int]]]
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, why not encoded)
    # (line, tokens its whole input takes) of every question longer than max_length: left
    # out (in `skipped`) or cut short, so that a report can tell these from unaligned values.
    too_long: list[tuple[int, int]] = field(default_factory=list)
    # (line, the values not labelled) of the rows trained with a masked operator head.
    partly_labelled: list[tuple[int, str]] = field(default_factory=list)

    def arrays(self) -> list[np.ndarray]:
        """Inputs then labels, in INPUT_NAMES/LABEL_NAMES order (for ArrayBatches)."""
        return [self.inputs[n] for n in INPUT_NAMES] + [self.labels[n] for n in LABEL_NAMES]


def batch_from_arrays(arrays: Sequence[np.ndarray]) -> tuple[dict, dict]:
    """(inputs, labels) dicts of one batch cut from `Features.arrays()`."""
    count = len(INPUT_NAMES)
    return (dict(zip(INPUT_NAMES, arrays[:count])), dict(zip(LABEL_NAMES, arrays[count:])))


def shortest_input(columns: int) -> int:
    """The fewest tokens an example of a table with `columns` columns can take: one question
    token and one token per header, each with its `[CLS] [SEP]`. A question of such a table
    does not fit a shorter `max_length` at all, however it is cut."""
    return 3 + 3 * columns


def _whole_input(question: list[int], headers: list[list[int]]) -> int:
    """The tokens of an example with nothing cut: what `max_length` must be to keep it whole."""
    return 2 + len(question) + sum(2 + len(h) for h in headers)


def _fit(question: list[int], headers: list[list[int]], max_length: int
         ) -> tuple[list[int], list[list[int]]] | None:
    """Shorten the pieces to fit `max_length` with all special tokens: every column keeps
    its `[CLS] [SEP]`; headers are cut to a common cap first, the question last."""
    if max_length < shortest_input(len(headers)):
        return None
    budget = max_length - 2 - 2 * len(headers)
    longest = max((len(h) for h in headers), default=0)
    cap = longest
    while cap > 1 and len(question) + sum(min(len(h), cap) for h in headers) > budget:
        cap -= 1
    headers = [h[:cap] for h in headers]
    return question[:budget - sum(len(h) for h in headers)], headers


def encode(questions: Sequence[Question], tables: dict[str, Table],
           tokenizer: WordPieceTokenizer, max_length: int, *, labels: bool,
           num_columns: int | None = None) -> Features:
    """Model inputs for `questions`, plus labels when `labels`. A question whose columns do
    not fit `max_length` is left out (reported in `skipped`); with labels, one with a value
    that cannot be located is kept with that value unlabelled (`partly_labelled`).
    `num_columns` pads the column axis (default: the most any table has)."""
    num_columns = num_columns or max(len(tables[q.table_id].header) for q in questions)
    header_pieces = {table_id: tokenizer.encode_batch([str(h) for h in table.header])
                     for table_id, table in tables.items()}
    encodings = tokenizer.encode_batch([q.question for q in questions])
    rows: list[tuple[Question, dict, dict | None, list]] = []
    skipped: list[tuple[int, str]] = []
    partly: list[tuple[int, str]] = []
    too_long: list[tuple[int, int]] = []
    for question, encoding in zip(questions, encodings):
        table = tables[question.table_id]
        headers = [h.ids for h in header_pieces[question.table_id]]
        whole = _whole_input(encoding.ids, headers)
        if whole > max_length:
            too_long.append((question.line, whole))
        fitted = _fit(encoding.ids, headers, max_length)
        if fitted is None:
            skipped.append((question.line, f"{len(table.header)} columns do not fit "
                                           f"data.max_length {max_length} (they need "
                                           f"{shortest_input(len(table.header))} tokens, the "
                                           f"whole question {whole})"))
            continue
        inputs = _inputs(tokenizer, *fitted, max_length, num_columns)
        spans = encoding.offsets[:len(fitted[0])]
        target = None
        if labels:
            target, missing = _labels(question, table, spans, max_length, num_columns)
            if missing:
                partly.append((question.line, missing))
        rows.append((question, inputs, target, spans))

    def stacked(index: int, names: tuple[str, ...], empty_shape: tuple[int, ...]) -> dict:
        return {name: np.stack([row[index][name] for row in rows]) if rows
                else np.zeros(empty_shape, np.int32) for name in names}

    return Features(questions=[row[0] for row in rows],
                    inputs=stacked(1, INPUT_NAMES, (0, max_length)),
                    labels=stacked(2, LABEL_NAMES, (0,)) if labels else None,
                    token_spans=[row[3] for row in rows], skipped=skipped,
                    too_long=too_long, partly_labelled=partly)


def _inputs(tokenizer: WordPieceTokenizer, question: list[int], headers: list[list[int]],
            max_length: int, num_columns: int) -> dict[str, np.ndarray]:
    ids = [tokenizer.cls_id, *question, tokenizer.sep_id]
    segments = [0] * len(ids)
    positions = []
    for header in headers:
        positions.append(len(ids))
        ids += [tokenizer.cls_id, *header, tokenizer.sep_id]
    segments += [1] * (len(ids) - len(segments))
    arrays = {name: np.zeros(max_length, np.int32)
              for name in ("token_ids", "segment_ids", "padding_mask", "question_mask")}
    arrays["token_ids"][:len(ids)] = ids
    arrays["segment_ids"][:len(ids)] = segments
    arrays["padding_mask"][:len(ids)] = 1
    arrays["question_mask"][1:1 + len(question)] = 1
    arrays["header_positions"] = np.zeros(num_columns, np.int32)
    arrays["header_positions"][:len(positions)] = positions
    arrays["header_mask"] = np.zeros(num_columns, np.int32)
    arrays["header_mask"][:len(positions)] = 1
    return arrays


def _labels(question: Question, table: Table, spans: list[tuple[int, int]], max_length: int,
            num_columns: int) -> tuple[dict, str]:
    """The labels of one question and what they miss ("" when every value is labelled)."""
    sql = question.sql
    agg = np.full(num_columns, NOT_SELECTED, np.int32)
    for column, aggregation in zip(sql["sel"], sql["agg"]):
        agg[column] = aggregation
    op = np.full(max_length, NOT_A_VALUE, np.int32)
    link = np.full((max_length, LINK_SLOTS), -1, np.int32)
    missing = []
    for (column, operator, value), alignment in zip(sql["conds"],
                                                    align_conditions(question, table)):
        if alignment.kind == "failed":
            missing.append(f"value {value!r} not found in the question")
            continue
        tokens = [i + 1 for i, (start, end) in enumerate(spans)
                  if start < alignment.end and end > alignment.start]
        if not tokens:
            missing.append(f"value {value!r} lies beyond data.max_length")
            continue
        op[tokens] = operator
        for token in tokens:  # a mention shared by conditions on several columns serves each
            columns = [c for c in link[token] if c >= 0]
            if column not in columns and len(columns) < LINK_SLOTS:
                link[token, len(columns)] = column
    op_mask = np.zeros(max_length, np.int32)
    if missing:
        op_mask[op != NOT_A_VALUE] = 1
    else:
        op_mask[1:1 + len(spans)] = 1
    return {"conn": np.int32(sql.get("cond_conn_op", 0)), "agg": agg, "op": op, "link": link,
            "op_mask": op_mask}, "; ".join(missing)
