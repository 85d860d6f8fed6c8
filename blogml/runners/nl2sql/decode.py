"""The seed's heads' outputs -> a competition `sql` object.

Columns whose aggregation head does not say "not selected" are selected (at least one: the
likeliest, when none is). Runs of consecutive question tokens with the same operator become
one condition per column the run links to (usually one; several when one mention is the
value of several conditions); its value is cut from the original question text by the
tokens' character offsets, then written in the column's terms (Chinese numerals and unit
multipliers of a real column become the number in the header's unit).

Then the seed's rules (`DecodeRules`, each a config switch under `model.decode`), which
hold of every gold query: a `>`/`<` value is a number; an `==` value of a text column is
one of its cells (a span that names a cell another way, 武大 for 武汉大学, is snapped to
it, and a value that is a cell of another column moves there); one condition has no
connector and several have `and` or `or`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from blogml.data.nl2sql_sql import NOT_A_VALUE, NOT_SELECTED, OPERATORS, Table
from blogml.data.nl2sql_values import closest_cell, value_from_span
from blogml.metrics.nl2sql import number

EQUAL, NOT_EQUAL = OPERATORS.index("=="), OPERATORS.index("!=")  # operator codes
SHARED_SHARE = 0.5  # a run's second column needs half the likeliest one's probability
# A value that names no cell (as a shorter or longer form, a date, a number) is snapped to
# the nearest by edit distance only within a third of edits: 公关KTV -> 公馆KTV, never
# 鲁滨孙行动 -> 海底两万里 (a value missing from the table stays as the question says it).
SNAP_EDIT_SHARE = 1 / 3


@dataclass(frozen=True)
class DecodeRules:
    """Which of the seed's decoding rules apply (`model.decode`)."""

    snap_to_cells: bool = True
    compare_numbers_only: bool = True
    consistent_connector: bool = True

    @classmethod
    def from_config(cls, section: Mapping[str, bool]) -> DecodeRules:
        return cls(**section)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def _selection(agg_logits: np.ndarray) -> tuple[list[int], list[int]]:
    choice = agg_logits.argmax(-1)
    sel = [int(c) for c in np.flatnonzero(choice != NOT_SELECTED)]
    if sel:
        return sel, [int(choice[c]) for c in sel]
    scores = _softmax(agg_logits)[:, :NOT_SELECTED]
    column = int(scores.max(-1).argmax())
    return [column], [int(scores[column].argmax())]


def _likely_columns(link_probabilities: np.ndarray) -> list[int]:
    """The likeliest column, then any other at least SHARED_SHARE as likely (one mention
    serving several conditions is trained towards equal shares of its columns)."""
    best = int(link_probabilities.argmax())
    threshold = SHARED_SHARE * link_probabilities[best]
    return [best] + [int(c) for c in np.flatnonzero(link_probabilities >= threshold)
                     if c != best]


def _value_runs(operators: np.ndarray, link_probabilities: np.ndarray
                ) -> list[tuple[int, int, int]]:
    """(first token, last token, operator) of each run of value tokens: consecutive tokens
    with the same operator whose likely columns overlap (two values side by side for two
    columns, 进口|电饭锅, are two runs; a token leaning a little more to the other column of
    a shared value does not split it)."""
    runs: list[list[int]] = []
    previous: set[int] = set()
    for i, op in enumerate(operators.tolist()):
        if op == NOT_A_VALUE:
            continue
        likely = set(_likely_columns(link_probabilities[i]))
        if runs and runs[-1][1] == i - 1 and runs[-1][2] == op and likely & previous:
            runs[-1][1] = i
        else:
            runs.append([i, i, op])
        previous = likely
    return [tuple(run) for run in runs]


def _text_cells(table: Table) -> dict[int, list[str]]:
    """The distinct non-empty cells of each text column, in row order."""
    cells: dict[int, list[str]] = {}
    for column, kind in enumerate(table.types):
        if kind == "text":
            seen = dict.fromkeys(str(row[column]).strip() for row in table.rows
                                 if row[column] is not None)
            cells[column] = [cell for cell in seen if cell]
    return cells


def _snap(column: int, value: str, cells: dict[int, list[str]], header: str
          ) -> tuple[int, str]:
    """An `==` text value as one of the table's `cells` (`_text_cells`): kept when its
    column holds it, moved to the column that holds it exactly, else the most similar cell
    of its own column."""
    if value in cells.get(column, ()):
        return column, value
    holder = next((other for other, values in cells.items() if value in values), None)
    if holder is not None:
        return holder, value
    snapped = closest_cell(value, cells.get(column, []), header=header,
                           max_edit_share=SNAP_EDIT_SHARE)
    return column, snapped if snapped is not None else value


def decode(outputs: dict[str, np.ndarray], row: int, question: str,
           spans: list[tuple[int, int]], table: Table,
           rules: DecodeRules = DecodeRules()) -> dict[str, Any]:
    """The `sql` of example `row` of a batch of head outputs (logits)."""
    columns = len(table.header)
    sel, agg = _selection(outputs["agg"][row, :columns])
    tokens = slice(1, 1 + len(spans))  # question tokens follow the first [CLS]
    op_probabilities = _softmax(outputs["op"][row, tokens])
    link_probabilities = _softmax(outputs["link"][row, tokens, :columns])
    cells = _text_cells(table) if rules.snap_to_cells else {}
    conds: list[list[Any]] = []
    for first, last, run_op in _value_runs(op_probabilities.argmax(-1), link_probabilities):
        text = question[spans[first][0]:spans[last][1]]
        for column in _likely_columns(link_probabilities[first:last + 1].mean(0)):
            op = run_op
            value = value_from_span(text, str(table.header[column]), table.types[column])
            if rules.compare_numbers_only and op not in (EQUAL, NOT_EQUAL) and number(
                    value) is None:
                mean = op_probabilities[first:last + 1].mean(0)
                op = EQUAL if mean[EQUAL] >= mean[NOT_EQUAL] else NOT_EQUAL
            if rules.snap_to_cells and op == EQUAL and table.types[column] == "text":
                column, value = _snap(column, value, cells, str(table.header[column]))
            cond = [column, op, value]
            if cond not in conds:
                conds.append(cond)
    connector = outputs["conn"][row]
    if not rules.consistent_connector:
        conn = int(connector.argmax())
    else:
        conn = 0 if len(conds) <= 1 else 1 + int(connector[1:].argmax())
    return {"sel": sel, "agg": agg, "cond_conn_op": conn, "conds": conds}
