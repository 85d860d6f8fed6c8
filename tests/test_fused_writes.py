"""TensorFlow only: the tricks' elementwise writes compiled as one XLA cluster in a traced
step (`blogml.optimizers.kernels.fused`) make the updates of the formulas.

The formula tests of test_derived_optimizers.py apply the optimizer eagerly, where nothing
is compiled; here the same comparisons run inside a `tf.function`, with the size from which
writes are fused lowered so that the test's small weights take the compiled path."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from blogml.optimizers import build_optimizer, kernels
from tests.test_derived_optimizers import assert_same, gradients, problem, run_keras

FUSED_CONFIGS = [
    pytest.param({"name": "adam", "learning_rate": 0.05, "weight_decay": 0.01,
                  "layer_adaptation": True, "gradient_accumulation_steps": 2,
                  "lookahead": {"k": 2, "alpha": 0.5}, "ema": {"momentum": 0.9},
                  "paramwise_lr": {"kernel": 2.0},
                  "schedule": {"piecewise_linear": {2: 1.0, 4: 0.5}}}, id="everything"),
    pytest.param({"name": "sgd", "learning_rate": 0.1, "momentum": 0.5,
                  "weight_decay": 0.1, "exclude_from_weight_decay": ["bias"],
                  "ema": {"momentum": 0.8}}, id="wd+ema-sgd"),
]


@pytest.fixture
def fuse_everything(monkeypatch):
    monkeypatch.setattr(kernels, "FUSE_FROM_ELEMENTS", 1)


def compiled_calls(function) -> int:
    """XLA-compiled function calls in a traced step's graph."""
    graph = function.get_concrete_function().graph
    return sum("_XlaMustCompile" in op.node_def.attr for op in graph.get_operations())


@pytest.mark.parametrize("config", FUSED_CONFIGS)
def test_fused_writes_in_a_traced_step_match_the_formula(config, fuse_everything):
    assert_same(config, steps=9, traced=True)


def test_lazy_rows_with_layer_adaptation_fused_match_the_formula(fuse_everything):
    config = {"name": "adam", "learning_rate": 0.05, "layer_adaptation": True,
              "lazy": {"include": ["kernel"]}, "ema": {"momentum": 0.9}}
    assert_same(config, steps=7, sparse_rows=True, traced=True)


def test_fused_lazy_rows_and_their_slots_stay_bit_identical(fuse_everything):
    config = {"name": "adam", "learning_rate": 0.05, "lazy": {"include": ["kernel"]}}
    params = problem()
    warm = gradients(2)
    _, weights_before, before = run_keras(config, params, warm, traced=True)
    cold = [{"kernel": np.where(np.arange(4)[:, None] == 1, g["kernel"], 0.0),
             "bias": g["bias"]} for g in gradients(3, seed=5)]  # only row 1 from now on
    _, weights, after = run_keras(config, params, warm + cold, traced=True)
    untouched = [0, 2, 3]
    assert np.array_equal(weights["kernel"][untouched], weights_before["kernel"][untouched])
    for slot in ("kernel_momentum", "kernel_velocity"):
        assert np.array_equal(after[slot][untouched], before[slot][untouched])
        assert not np.array_equal(after[slot][1], before[slot][1])


@pytest.mark.parametrize("traced", [False, True])
def test_a_base_reading_theta_has_its_own_step_scaled_by_the_paramwise_multiplier(
        traced, fuse_everything):
    """Lamb steps θ itself (its trust ratio reads θ), so Δ = θ_new − θ_old: each update is
    θ + 0.1·Δ_lamb(θ), with Δ_lamb Keras's own Lamb step from the same θ and moments
    (the moments do not depend on θ, so a plain Lamb kept at our θ has them too)."""
    params, grads = problem(), gradients(5)
    config = {"name": "lamb", "learning_rate": 0.05, "paramwise_lr": {"bias": 0.1}}
    _, weights, _ = run_keras(config, params, grads, traced=traced)
    theta = {k: v.copy() for k, v in params.items()}
    plain = keras.optimizers.Lamb(learning_rate=0.05)
    variables = [keras.Variable(theta[k], name=k) for k in params]
    for g in grads:
        for variable, k in zip(variables, params):
            variable.assign(theta[k])
        plain.apply([tf.constant(g[k]) for k in params], variables)
        for variable, k in zip(variables, params):
            step = keras.ops.convert_to_numpy(variable) - theta[k]
            theta[k] = theta[k] + (0.1 if k == "bias" else 1.0) * step
    for k in params:
        np.testing.assert_allclose(weights[k], theta[k], atol=1e-12, rtol=0, err_msg=k)


@pytest.mark.parametrize("fuse_from, expected_calls", [(12, 2), (13, 0)])
def test_only_weights_from_the_threshold_on_are_compiled(monkeypatch, fuse_from,
                                                         expected_calls):
    """The 4×3 kernel (12 elements) is fused from a threshold of 12 on: one cluster for the
    post-processing writes and one for the average's; the 3-element bias never is."""
    monkeypatch.setattr(kernels, "FUSE_FROM_ELEMENTS", fuse_from)
    variables = [keras.Variable(v, name=k) for k, v in problem().items()]
    optimizer = build_optimizer({"name": "adam", "learning_rate": 0.05, "weight_decay": 0.01,
                                 "ema": {"momentum": 0.9}})
    optimizer.build(variables)
    grads = [tf.constant(g) for g in gradients(1)[0].values()]
    step = tf.function(lambda: optimizer.apply(grads, variables))
    assert compiled_calls(step) == expected_calls
