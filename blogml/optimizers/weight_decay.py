"""Decoupled weight decay (AdamW's, on any base)."""

from __future__ import annotations


def decayed(update, theta, shrink, subtracted: bool = False):
    """Δ − s·θ, s = η·wd: the step with the decay of the weights *before* it, scaled by η,
    so that θ is rounded once when the update is added (θ ← θ + Δ − η·wd·θ). With
    `subtracted`, `update` is the amount the step subtracts (Δ = −u) and so is the result:
    u + s·θ, for θ ← θ − (u + η·wd·θ), the same numbers."""
    return update + shrink * theta if subtracted else update - shrink * theta
