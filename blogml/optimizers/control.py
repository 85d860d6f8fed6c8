"""Conditional updates that run only when needed, on every backend.

Gradient accumulation updates on one micro-batch in n, Lookahead synchronises once in k
updates: computing those updates every step and discarding them with a select costs a
full pass over every weight and slot. `run_if` executes the update only when its condition
holds: on TensorFlow a functional `If` op whose branch carries the assignments (kept
functional by `keras_adapter.unlowered_cond`); on torch (eager) a plain branch; on JAX,
where an optimizer step is a pure function and a branch may not assign, the update runs in
a `keras.StatelessScope` inside `lax.cond` and the branch returns the new values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
from keras import ops

from blogml import keras_adapter


def run_if(condition, update: Callable[[], None], written: Sequence[keras.Variable],
           visible: Sequence[keras.Variable]) -> None:
    """Run `update` (which assigns to `written`) only where `condition` holds.

    `visible` lists every variable the update reads or writes (JAX needs their values).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        keras_adapter.unlowered_cond(condition, update)
        return
    if backend != "jax":
        ops.cond(condition, lambda: _call(update), lambda: None)
        return

    def taken():
        mapping = [(v, v.value) for v in _unique(list(visible) + list(written))]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            update()
        return [scope.get_current_value(v) for v in written]

    values = ops.cond(condition, taken, lambda: [v.value for v in written])
    for variable, value in zip(written, values):
        variable.assign(value)


def _call(update: Callable[[], None]) -> None:
    update()


def _unique(variables: list[keras.Variable]) -> list[keras.Variable]:
    """Each variable once, in first-seen order (by identity: variables do not hash by value)."""
    return list({id(variable): variable for variable in variables}.values())
