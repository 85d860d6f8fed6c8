"""The seed's heads' outputs -> a competition `sql` object.

Columns whose aggregation head does not say "not selected" are selected (at least one: the
likeliest, when none is). Runs of consecutive question tokens with the same operator and
the same column become one condition; its value is cut from the original question text by
the tokens' character offsets, then written in the column's terms (Chinese numerals and
unit multipliers of a real column become the number in the header's unit).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from blogml.data.nl2sql import Table
from blogml.data.nl2sql_values import value_from_span
from blogml.models.nl2sql import NOT_A_VALUE, NOT_SELECTED


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


def _value_runs(operators: np.ndarray, columns: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(first token, last token, operator, column) of each run of value tokens."""
    runs: list[list[int]] = []
    for i, (op, column) in enumerate(zip(operators.tolist(), columns.tolist())):
        if op == NOT_A_VALUE:
            continue
        if runs and runs[-1][1] == i - 1 and runs[-1][2:] == [op, column]:
            runs[-1][1] = i
        else:
            runs.append([i, i, op, column])
    return [tuple(run) for run in runs]


def decode(outputs: dict[str, np.ndarray], row: int, question: str,
           spans: list[tuple[int, int]], table: Table) -> dict[str, Any]:
    """The `sql` of example `row` of a batch of head outputs (logits)."""
    columns = len(table.header)
    sel, agg = _selection(outputs["agg"][row, :columns])
    tokens = slice(1, 1 + len(spans))  # question tokens follow the first [CLS]
    operators = outputs["op"][row, tokens].argmax(-1)
    value_columns = outputs["link"][row, tokens, :columns].argmax(-1)
    conds: list[list[Any]] = []
    for first, last, op, column in _value_runs(operators, value_columns):
        text = question[spans[first][0]:spans[last][1]]
        cond = [column, op, value_from_span(text, str(table.header[column]),
                                            table.types[column])]
        if cond not in conds:
            conds.append(cond)
    return {"sel": sel, "agg": agg, "cond_conn_op": int(outputs["conn"][row].argmax()),
            "conds": conds}
