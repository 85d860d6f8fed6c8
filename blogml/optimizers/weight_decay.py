"""Decoupled weight decay (AdamW's, on any base)."""

from __future__ import annotations


def decayed(update, theta, shrink):
    """Δ − s·θ, s = η·wd: the step with the decay of the weights *before* it, scaled by η,
    so that θ is rounded once when the update is added (θ ← θ + Δ − η·wd·θ)."""
    return update - shrink * theta
