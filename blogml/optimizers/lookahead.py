"""Lookahead (Zhang et al. 2019; "Keras实现Lookahead与LazyOptimizer")."""

from __future__ import annotations

import keras


def synchronise(fast: keras.Variable, slow: keras.Variable, alpha: float) -> None:
    """The every-k-updates step: φ ← φ + α(θ − φ), θ ← φ."""
    moved = slow.value + alpha * (fast.value - slow.value)
    slow.assign(moved)
    fast.assign(moved)
