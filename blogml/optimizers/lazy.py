"""Lazy row-wise updates (LazyAdam; "Keras实现Lookahead与LazyOptimizer").

Rows of an embedding that a batch did not touch have an all-zero gradient row. A dense
optimizer still moves them (momentum keeps flowing, moments decay); a lazy one leaves
the row's parameters and its optimizer slots exactly as they were.
"""

from __future__ import annotations

from keras import ops


def touched_rows(gradient):
    """Boolean mask, broadcastable to the variable: rows with any non-zero gradient."""
    if len(gradient.shape) < 2:
        return ops.not_equal(gradient, 0)
    nonzero = ops.not_equal(gradient, 0)
    touched = ops.any(nonzero, axis=tuple(range(1, len(gradient.shape))))
    return ops.reshape(touched, (-1,) + (1,) * (len(gradient.shape) - 1))


def keep_untouched(new, old, mask):
    """Rows outside `mask` take their old value (bit-identical: a select, no arithmetic)."""
    return ops.where(mask, new, old)
