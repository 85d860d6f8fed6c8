"""Exponential moving average of the weights, bias-corrected like Adam's moments."""

from __future__ import annotations

from keras import ops


def update(average, theta, momentum: float):
    """ē ← m·ē + (1 − m)·θ, after each applied update (ē starts at 0)."""
    return momentum * average + (1.0 - momentum) * theta


def corrected(average, momentum: float, updates):
    """ē / (1 − m^u) after u ≥ 1 updates: the average of the weights seen, without the
    pull towards the zero it started from (with m = 0 it is exactly the current weights).
    """
    return average / (1.0 - ops.power(momentum, ops.cast(updates, average.dtype)))
