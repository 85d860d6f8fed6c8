"""Decoupled weight decay (AdamW's, on any base)."""

from __future__ import annotations


def decay(theta_new, theta_old, learning_rate, rate: float):
    """θ ← θ + Δ − η·wd·θ: the decay uses the weights *before* the step, scaled by η."""
    return theta_new - learning_rate * rate * theta_old
