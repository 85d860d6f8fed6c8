"""Lookahead (Zhang et al. 2019; "Keras实现Lookahead与LazyOptimizer")."""

from __future__ import annotations

from keras import ops


def synchronise(theta, slow, alpha: float, now):
    """Every k updates: φ ← φ + α(θ − φ), θ ← φ. `now` says whether this update is one.

    Returns the new (θ, φ); both are unchanged when `now` is false.
    """
    moved = slow + alpha * (theta - slow)
    return ops.where(now, moved, theta), ops.where(now, moved, slow)
