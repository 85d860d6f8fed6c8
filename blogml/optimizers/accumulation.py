"""Gradient accumulation ("Keras梯度累积优化器"): n micro-batches, one update.

Micro-batches add their gradients to an accumulator; the n-th runs the whole update on
their mean (`control.run_if`) and clears it. The base optimizer's step counter, and all
that derives from it (bias correction, the schedule, Lookahead's k, the EMA), counts
updates, not micro-batches.
"""

from __future__ import annotations

from keras import ops


def is_update_step(micro_step, steps: int):
    """True on the micro-batch that completes a group of `steps`."""
    return ops.equal((micro_step + 1) % steps, 0)
