"""Gradient accumulation ("Keras梯度累积优化器"): n micro-batches, one update.

Every micro-batch runs the whole update on the running mean of the gradients, and the
results are kept only on every n-th: a select instead of a branch, so the same code runs
under tf.function/XLA, jax.jit (where a branch with side effects is not allowed) and
eager torch. The base optimizer's step counter and everything derived from it (bias
correction, the schedule, Lookahead's k, the EMA) therefore count updates, not micro-batches.
"""

from __future__ import annotations

from keras import ops


def is_update_step(micro_step, steps: int):
    """True on the micro-batch that completes a group of `steps`."""
    return ops.equal((micro_step + 1) % steps, 0)


def keep_if(condition, new, old):
    return ops.where(condition, new, old)
