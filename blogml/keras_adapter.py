"""What blogml relies on in Keras beyond its public API, in one place.

`slots_by_variable`, `tracing_a_tensorflow_step`, `outside_the_traced_step` and
`captured_writes` depend on behaviours Keras documents but does not offer as a call (the
last, that its optimizers write weights through their `assign` methods);
`symbolic_build` is the one private Keras method blogml calls, and
`writes_through_assign_methods` the one private Keras class it names (torch's parallel
optimizer); `unlowered_cond` sets one private TensorFlow attribute.
`tests/test_keras_adapter.py` checks each on the installed Keras and says which one broke,
so an upgrade fails there with a clear message instead of as a wrong update elsewhere (and
checks that no other module uses a private Keras name).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras


def slots_by_variable(optimizer: keras.optimizers.Optimizer,
                      variables: Sequence[keras.Variable]) -> list[list[keras.Variable]]:
    """The slot variables (moments, momenta, ...) `optimizer` keeps for each of `variables`.

    `add_variable_from_reference` names a slot `{reference path with / as _}_{slot name}`
    (its docstring); a slot belongs to the variable with the longest such prefix and the
    same shape, so `dense/kernel` does not claim the slots of `dense_kernel/w`.
    """
    prefixes = [variable.path.replace("/", "_") + "_" for variable in variables]
    slots: list[list[keras.Variable]] = [[] for _ in variables]
    for slot in optimizer.variables:
        leaf = slot.path.split("/")[-1]
        owners = [k for k, prefix in enumerate(prefixes)
                  if leaf.startswith(prefix) and tuple(slot.shape) == tuple(variables[k].shape)]
        if owners:
            slots[max(owners, key=lambda k: len(prefixes[k]))].append(slot)
    return slots


def tracing_a_tensorflow_step() -> bool:
    """True while TensorFlow traces a step: ops made then run as one graph, which
    `optimizers.kernels` can compile."""
    if keras.backend.backend() != "tensorflow":
        return False  # JAX and torch build optimizers eagerly, before any step is traced
    import tensorflow as tf

    return not tf.executing_eagerly()


@contextlib.contextmanager
def outside_the_traced_step() -> Iterator[None]:
    """Reads and assignments made within run now, once, even where an optimizer is built.

    Without a distribution strategy Keras's TensorFlow trainer builds the optimizer inside
    the trace of the first train step: a read of a weight there would be a symbolic tensor
    of the step, and an assignment an op of every step. In `tf.init_scope`, where Keras
    itself creates the variables, a read is the weight's value now (θ₀) and an assignment
    runs at once. On the other backends the optimizer is built eagerly anyway.
    """
    if not tracing_a_tensorflow_step():
        yield
        return
    import tensorflow as tf

    with tf.init_scope():
        yield


def symbolic_build(model: keras.Model, x: Any, y: Any) -> None:
    """Build the compiled loss and metrics from the shapes of a first batch, as `fit` does
    before its first step. A tf.distribute step that runs `train_step` itself needs it, and
    Keras offers it only as `Model._maybe_symbolic_build`."""
    model._maybe_symbolic_build(data_batch=(x, y, None))


def unlowered_cond(condition, update: Callable[[], None]) -> None:
    """TensorFlow: run `update` only where `condition` holds, as a functional `If` op.

    In a `tf.function` TensorFlow lowers a `tf.cond` to Switch/Merge ops, and the executor
    then schedules every op of the untaken branch as a dead op on every step: Lookahead's
    synchronisation (taken once in k updates) cost about 6 % of a small MLP's step that way.
    Kept functional (cond_v2's private `_lower_using_switch_merge` attribute off), the `If`
    op calls the branch's function only when it is taken. Outside a graph (eager), a plain
    `tf.cond`.
    """
    import tensorflow as tf
    from tensorflow.core.framework import attr_value_pb2

    def taken():
        update()
        return tf.constant(0)

    result = tf.cond(condition, taken, lambda: tf.constant(0))
    if tf.executing_eagerly():
        return
    op = result.op
    while op.type == "Identity":
        op = op.inputs[0].op
    if op.type not in ("If", "StatelessIf"):
        raise RuntimeError(f"tf.cond made a {op.type} op, not an If op: "
                           "blogml/keras_adapter.unlowered_cond needs updating")
    op._set_attr("_lower_using_switch_merge", attr_value_pb2.AttrValue(b=False))


def writes_through_assign_methods(optimizer: keras.optimizers.Optimizer) -> bool:
    """Whether `optimizer` writes the weights through its public `assign`, `assign_add` and
    `assign_sub`, as Keras's base optimizer asks of every optimizer, so that
    `captured_writes` sees its steps. Keras's torch optimizers (Adam, SGD, ... on torch)
    write them with torch's foreach kernels in one parallel update instead."""
    if keras.backend.backend() != "torch":
        return True
    from keras.src.backend.torch.optimizers.torch_parallel_optimizer import (
        TorchParallelOptimizer,
    )

    return not isinstance(optimizer, TorchParallelOptimizer)


@contextlib.contextmanager
def captured_writes(optimizer: keras.optimizers.Optimizer,
                    variables: Sequence[keras.Variable]) -> Iterator[list]:
    """Within: `optimizer`'s writes to `variables` are recorded instead of made.

    Yields a list that holds, on exit, `(u, sign)` per variable: the step its writes add up
    to is Δ = sign·u, exactly as the optimizer computed it (u is what an `assign_sub` was
    given: the sign is kept apart, so that negating it costs no pass over the weight), with
    the variable still at θ (a step that reads θ reads it). Keras's optimizers write the
    weights through their public `assign`, `assign_add` and `assign_sub` (on TensorFlow
    given the `tf.Variable` inside the Keras variable); for the time of the call they are
    the instance's own recorders.
    A variable the optimizer did not write that way is an error, named on exit.
    """
    targets = list(variables)
    # The objects are held here, so that no id is reused by another object meanwhile.
    handles = [(k, handle) for k, variable in enumerate(targets)
               for handle in (variable, _backend_variable(variable))]
    position = {id(handle): k for k, handle in handles}
    increments: list = [None] * len(targets)

    def recorder(method: str):
        write = getattr(optimizer, method)

        def record(variable, value):
            k = position.get(id(variable))
            if k is None:
                return write(variable, value)
            value = keras.ops.convert_to_tensor(value, targets[k].dtype)
            sign = -1.0 if method == "assign_sub" else 1.0
            if method == "assign":
                value = value - targets[k].value
            elif increments[k] is not None:  # a second write: their sum, as an increment
                earlier, earlier_sign = increments[k]
                value, sign = earlier_sign * earlier + sign * value, 1.0
            increments[k] = (value, sign)
            return None

        return record

    methods = ("assign", "assign_add", "assign_sub")
    for method in methods:
        setattr(optimizer, method, recorder(method))
    try:
        yield increments
    finally:
        for method in methods:
            delattr(optimizer, method)
    missed = [targets[k].path for k, increment in enumerate(increments) if increment is None]
    if missed:
        raise RuntimeError(
            f"{type(optimizer).__name__} did not write {', '.join(missed)} through its "
            "assign/assign_add/assign_sub methods, so its step cannot be captured: "
            "see blogml/keras_adapter.py (writes_through_assign_methods)")


def _backend_variable(variable: keras.Variable):
    """What a TensorFlow optimizer's step is handed for `variable` (its `tf.Variable`);
    the Keras variable itself elsewhere."""
    if keras.backend.backend() == "tensorflow":
        return variable.value
    return variable
