"""What blogml relies on in Keras beyond its public API lives in one module, and is checked.

If a Keras upgrade breaks one of these tests, the message says which behaviour changed;
fix `blogml/keras_adapter.py` (and the `keras` pin in setup.cfg) there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import keras
import numpy as np
import pytest

from blogml import keras_adapter

PACKAGE = Path(__file__).resolve().parent.parent / "blogml"
ADAPTER = PACKAGE / "keras_adapter.py"


def _keras_private_names() -> set[str]:
    """Single-underscore names on Keras's optimizers and variables, classes and instances."""
    variable = keras.Variable(np.zeros((2, 2), "float32"), name="w")
    built = keras.optimizers.Adam()
    built.build([variable])
    objects = [variable, built, keras.Variable, keras.Layer, keras.Model]
    objects += [getattr(keras.optimizers, name) for name in dir(keras.optimizers)
                if isinstance(getattr(keras.optimizers, name), type)]
    names = set()
    for thing in objects:
        names |= set(dir(thing)) | set(getattr(thing, "__dict__", {}))
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


@pytest.mark.backend_neutral  # CI runs these under JAX and torch too
@pytest.mark.models
def test_no_private_keras_name_outside_the_adapter_module():
    private = _keras_private_names()
    assert {"_iterations", "_backend_apply_gradients", "_get_variable_index"} <= private
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == ADAPTER:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        methods = {id(item) for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                   for item in node.body if isinstance(item, ast.FunctionDef)}
        for node in ast.walk(tree):
            name = (node.attr if isinstance(node, ast.Attribute)  # reads, writes, calls
                    else node.name if id(node) in methods else None)  # overrides
            if name in private:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {name}")
    assert not found, ("private Keras names used outside blogml/keras_adapter.py "
                       "(use the public API, or move the use there with a test here):\n"
                       + "\n".join(found))


@pytest.mark.backend_neutral  # CI runs these under JAX and torch too
@pytest.mark.models
def test_slots_are_found_by_the_path_keras_names_them_after():
    variables = [keras.Variable(np.zeros((2, 3), "float32"), name="kernel"),
                 keras.Variable(np.zeros(3, "float32"), name="bias")]
    with keras.name_scope("dense_kernel"):  # a path that starts like another's slot names
        variables.append(keras.Variable(np.zeros((2, 3), "float32"), name="w"))
    optimizer = keras.optimizers.Adam()
    optimizer.build(variables)
    slots = keras_adapter.slots_by_variable(optimizer, variables)
    leaves = [sorted(s.path.split("/")[-1] for s in found) for found in slots]
    assert leaves == [["kernel_momentum", "kernel_velocity"], ["bias_momentum", "bias_velocity"],
                      ["dense_kernel_w_momentum", "dense_kernel_w_velocity"]], (
        "Keras no longer names optimizer slots `{variable path}_{slot}` "
        "(add_variable_from_reference): the lazy mask cannot find the slots to keep")


def _base_optimizers():
    from blogml.config.optimizer import BASE_OPTIMIZERS

    return sorted({class_name for class_name, _ in BASE_OPTIMIZERS.values()})


@pytest.mark.backend_neutral  # CI runs these under JAX and torch too
@pytest.mark.models
@pytest.mark.parametrize("class_name", _base_optimizers())
def test_a_captured_step_is_the_step_the_optimizer_makes_and_leaves_theta(class_name):
    """Two steps of each base blogml offers, captured and then written by the test, equal
    the optimizer's own two steps bit for bit, and the weight holds θ while captured. (On
    torch, Keras's foreach optimizers write past the methods: blogml steps zeroed buffers
    for those, and only the others are captured.)"""
    rng = np.random.default_rng(3)
    theta = rng.normal(size=(5, 4)).astype("float32")
    grads = [rng.normal(size=(5, 4)).astype("float32") for _ in range(2)]
    own, captured = (keras.Variable(theta, name="kernel") for _ in range(2))
    made, capturing = (getattr(keras.optimizers, class_name)(learning_rate=0.01)
                       for _ in range(2))
    if not keras_adapter.writes_through_assign_methods(capturing):
        assert keras.backend.backend() == "torch", class_name
        return
    for grad in grads:
        made.apply([keras.ops.convert_to_tensor(grad)], [own])
        before = keras.ops.convert_to_numpy(captured)
        try:
            with keras_adapter.captured_writes(capturing, [captured]) as increments:
                capturing.apply([keras.ops.convert_to_tensor(grad)], [captured])
                np.testing.assert_array_equal(keras.ops.convert_to_numpy(captured), before)
        except RuntimeError as error:
            pytest.fail(f"Keras's {class_name} no longer writes its weights through its "
                        f"assign methods ({error}): blogml cannot capture its step")
        written, sign = increments[0]
        captured.assign(captured + sign * written)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(captured),
                                  keras.ops.convert_to_numpy(own))


@pytest.mark.backend_neutral
@pytest.mark.models
def test_two_writes_to_a_weight_are_captured_as_their_sum():
    class Twice(keras.optimizers.SGD):
        def update_step(self, gradient, variable, learning_rate):
            self.assign_add(variable, 3.0 * gradient)
            self.assign_sub(variable, gradient)

    variable = keras.Variable(np.ones(3, "float32"), name="w")
    optimizer = Twice(learning_rate=0.1)
    optimizer.build([variable])
    with keras_adapter.captured_writes(optimizer, [variable]) as steps:
        optimizer.apply([keras.ops.convert_to_tensor([1.0, 2.0, 4.0])], [variable])
    written, sign = steps[0]
    np.testing.assert_array_equal(sign * keras.ops.convert_to_numpy(written), [2.0, 4.0, 8.0])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), np.ones(3))


@pytest.mark.backend_neutral
@pytest.mark.models
def test_a_write_past_the_assign_methods_is_named_not_lost():
    class Direct(keras.optimizers.SGD):
        def update_step(self, gradient, variable, learning_rate):
            variable.assign(variable - learning_rate * gradient)

    variable = keras.Variable(np.ones(3, "float32"), name="w")
    optimizer = Direct(learning_rate=0.1)
    optimizer.build([variable])
    with pytest.raises(RuntimeError, match=r"Direct did not write .*w through its "
                                           r"assign/assign_add/assign_sub"):
        with keras_adapter.captured_writes(optimizer, [variable]):
            optimizer.apply([keras.ops.ones(3)], [variable])


@pytest.mark.backend_neutral  # CI runs these under JAX and torch too
@pytest.mark.models
def test_an_eager_build_is_not_inside_a_trace():
    assert keras_adapter.tracing_a_tensorflow_step() is False
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        assert tf.function(lambda: tf.constant(keras_adapter.tracing_a_tensorflow_step()))()


def test_the_symbolic_build_builds_the_compiled_metrics_under_a_strategy():
    """TensorFlow only (not backend-neutral): it is what blogml's tf.distribute steps use."""
    import tensorflow as tf

    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    unbuilt = len(model.metrics_variables)
    x, y = np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32")
    try:
        keras_adapter.symbolic_build(model, x, y)
    except AttributeError as error:
        pytest.fail(f"Keras removed Model._maybe_symbolic_build ({error}): the tf.distribute "
                    "steps of blogml/runners/distribute_tf.py need another way to build the "
                    "compiled loss and metrics from a batch")
    assert len(model.metrics_variables) == unbuilt + 2  # mae's total and count
    assert model.optimizer.built


def test_a_conditional_update_stays_a_functional_if_op_that_runs_only_when_taken():
    """TensorFlow only: `tf.cond` lowered to Switch/Merge schedules the untaken branch's ops
    as dead ops on every step; `unlowered_cond` keeps the `If` op functional."""
    import tensorflow as tf

    counter = tf.Variable(0, dtype=tf.int64)

    @tf.function
    def step(flag):
        keras_adapter.unlowered_cond(flag, lambda: counter.assign_add(1))

    for flag in (True, False, True, False, False):
        step(tf.constant(flag))
    assert int(counter.numpy()) == 2
    graph = step.get_concrete_function(tf.constant(True)).graph
    conds = [op for op in graph.get_operations() if op.type in ("If", "StatelessIf")]
    assert len(conds) == 1, [op.type for op in graph.get_operations()]
    try:
        lowered = conds[0].get_attr("_lower_using_switch_merge")
    except ValueError:
        pytest.fail("TensorFlow's cond_v2 no longer sets `_lower_using_switch_merge`: "
                    "check how it lowers an If op and update keras_adapter.unlowered_cond")
    assert lowered is False
    keras_adapter.unlowered_cond(tf.constant(True), lambda: counter.assign_add(10))  # eager
    assert int(counter.numpy()) == 12


def test_an_optimizer_built_inside_the_first_traced_step_seeds_its_slow_weights_with_theta0():
    """TensorFlow only: without a strategy Keras's trainer builds the optimizer inside the
    trace of the first train step. `outside_the_traced_step` still copies θ₀ into
    Lookahead's slow weights, once: the result is the formula's, and the traced step holds
    one conditional (the synchronisation every k updates), not a first-update check."""
    import tensorflow as tf

    from blogml.optimizers import build_optimizer
    from tests.test_derived_optimizers import gradients, problem, run_reference

    config = {"name": "sgd", "learning_rate": 0.1, "lookahead": {"k": 3, "alpha": 0.5}}
    params, grads = problem(), gradients(7)
    variables = [keras.Variable(value, name=key) for key, value in params.items()]
    optimizer = build_optimizer(config)
    step = tf.function(lambda gs: optimizer.apply(gs, variables))
    for g in grads:
        step([tf.constant(g[key]) for key in params])
    reference = run_reference(config, params, grads)
    slows = {v.path.split("/")[-1]: v for v in optimizer.variables}
    for key, variable in zip(params, variables):
        np.testing.assert_allclose(variable.numpy(), reference.params[key], atol=1e-6,
                                   err_msg=key)
        np.testing.assert_allclose(slows[f"{key}_slow"].numpy(), reference.slow[key],
                                   atol=1e-6, err_msg=f"{key} slow weights")
    graph = step.get_concrete_function([tf.constant(grads[0][key]) for key in params]).graph
    assert [op.type for op in graph.get_operations() if "If" in op.type] == ["If"]
