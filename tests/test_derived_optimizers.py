"""Derived optimizers against a NumPy re-implementation of their formulas
(tests/reference_optimizers.py; README: Derived optimizers).

Backend-neutral: `.ci/run` runs this file under TensorFlow and under JAX.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from blogml.errors import ConfigError
from blogml.optimizers import build_optimizer, layer_adaptation
from tests.reference_optimizers import Reference

pytestmark = [pytest.mark.backend_neutral, pytest.mark.models]

# float32 against a float64 reference after a few steps. Keras's torch optimizers use
# torch's own fused update kernels, which round differently (measured up to 2.3e-6).
ATOL = 5e-6 if keras.backend.backend() == "torch" else 1e-6


def problem(seed: int = 0) -> dict[str, np.ndarray]:
    """Float64 variables: the comparison tests the formulas, not float32 rounding."""
    rng = np.random.default_rng(seed)
    return {"kernel": rng.normal(size=(4, 3)),
            "bias": rng.normal(size=(3,))}


def gradients(steps: int, seed: int = 1, sparse_rows: bool = False) -> list[dict]:
    """Random gradients; with `sparse_rows`, each step touches only some kernel rows."""
    rng = np.random.default_rng(seed)
    out = []
    for step in range(steps):
        kernel = rng.normal(size=(4, 3))
        if sparse_rows:
            kernel[[r for r in range(4) if (r + step) % 3 != 0]] = 0.0  # row 3 never before step 3
        out.append({"kernel": kernel, "bias": rng.normal(size=(3,))})
    return out


def run_keras(config: dict, params: dict, grads: list[dict], traced: bool = False):
    """`optimizer.apply` on each gradient, eagerly or (TensorFlow, `traced`) as the
    `tf.function` step of a train function."""
    variables = {k: keras.Variable(v, name=k) for k, v in params.items()}
    optimizer = build_optimizer(config)
    names = list(params)
    optimizer.build([variables[k] for k in names])
    apply = lambda gs: optimizer.apply(gs, [variables[k] for k in names])  # noqa: E731
    if traced:
        import tensorflow as tf

        apply = tf.function(apply)
    for g in grads:
        apply([keras.ops.convert_to_tensor(g[k]) for k in names])
    state = {v.path.split("/")[-1]: keras.ops.convert_to_numpy(v) for v in optimizer.variables}
    weights = {k: keras.ops.convert_to_numpy(v) for k, v in variables.items()}
    return optimizer, weights, state


def run_reference(config: dict, params: dict, grads: list[dict]) -> Reference:
    reference = Reference(params, **config)
    for g in grads:
        reference.step(g)
    return reference


def assert_same(config: dict, steps: int = 7, sparse_rows: bool = False,
                traced: bool = False) -> tuple:
    params, grads = problem(), gradients(steps, sparse_rows=sparse_rows)
    optimizer, weights, state = run_keras(config, params, grads, traced)
    reference = run_reference(config, params, grads)
    for k in params:
        np.testing.assert_allclose(weights[k], reference.params[k], atol=ATOL, rtol=0,
                                   err_msg=k)
        if config.get("name", "adam") == "adam":
            np.testing.assert_allclose(state[f"{k}_momentum"], reference.m[k], atol=ATOL,
                                       rtol=0, err_msg=f"{k} first moment")
            np.testing.assert_allclose(state[f"{k}_velocity"], reference.v[k], atol=ATOL,
                                       rtol=0, err_msg=f"{k} second moment")
        if config.get("lookahead"):
            np.testing.assert_allclose(state[f"{k}_slow"], reference.slow[k], atol=ATOL,
                                       err_msg=f"{k} slow weights")
        if config.get("ema"):  # kept bias-corrected (blogml.optimizers.ema)
            np.testing.assert_allclose(state[f"{k}_ema"], reference.ema_weights()[k],
                                       atol=ATOL, err_msg=f"{k} average")
    assert int(state["iteration"]) == reference.updates
    return optimizer, reference


@pytest.mark.parametrize("config", [
    pytest.param({"name": "adam", "learning_rate": 0.05}, id="adam"),
    pytest.param({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}, id="sgd-momentum"),
    pytest.param({"name": "sgd", "learning_rate": 0.2,
                  "schedule": {"piecewise_linear": {3: 1.0, 6: 0.25}}}, id="piecewise"),
    pytest.param({"name": "adam", "learning_rate": 0.05,
                  "schedule": {"piecewise_linear": {0: 0.5, 2: 1.0}}}, id="piecewise-start"),
    pytest.param({"name": "adam", "learning_rate": 0.05, "weight_decay": 0.1,
                  "exclude_from_weight_decay": ["bias"]}, id="weight-decay"),
    pytest.param({"name": "sgd", "learning_rate": 0.1, "momentum": 0.5,
                  "layer_adaptation": True}, id="layer-adaptation"),
    pytest.param({"name": "adam", "learning_rate": 0.05, "gradient_accumulation_steps": 3},
                 id="accumulation"),
    pytest.param({"name": "sgd", "learning_rate": 0.1, "lookahead": {"k": 3, "alpha": 0.5}},
                 id="lookahead"),
    pytest.param({"name": "adam", "learning_rate": 0.05, "ema": {"momentum": 0.8}}, id="ema"),
    pytest.param({"name": "adam", "learning_rate": 0.05, "paramwise_lr": {"bias": 0.1}},
                 id="paramwise"),
    # The combinations the issue names:
    pytest.param({"name": "adam", "learning_rate": 0.05, "weight_decay": 0.05,
                  "exclude_from_weight_decay": ["bias"], "layer_adaptation": True,
                  "exclude_from_layer_adaptation": ["bias"],
                  "schedule": {"piecewise_linear": {2: 1.0, 5: 0.1}}},
                 id="wd+layer-adaptation+piecewise-adam"),
    pytest.param({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9,
                  "lookahead": {"k": 2, "alpha": 0.3}, "ema": {"momentum": 0.7}},
                 id="lookahead+ema-sgd"),
    pytest.param({"name": "adam", "learning_rate": 0.05, "weight_decay": 0.01,
                  "layer_adaptation": True, "gradient_accumulation_steps": 2,
                  "lookahead": {"k": 2, "alpha": 0.5}, "ema": {"momentum": 0.9},
                  "paramwise_lr": {"kernel": 2.0},
                  "schedule": {"piecewise_linear": {2: 1.0, 4: 0.5}}}, id="everything"),
])
def test_each_trick_and_combination_matches_the_formula(config):
    optimizer, reference = assert_same(config, steps=9)
    if config.get("ema"):
        averages = [keras.ops.convert_to_numpy(a) for a in optimizer.average_weights()]
        for k, average in zip(["kernel", "bias"], averages):
            np.testing.assert_allclose(average, reference.ema_weights()[k], atol=ATOL)


def test_accumulation_with_lazy_rows_on_adam_matches_the_formula():
    config = {"name": "adam", "learning_rate": 0.05, "gradient_accumulation_steps": 2,
              "lazy": {"include": ["kernel"]}}
    assert_same(config, steps=8, sparse_rows=True)


def test_lazy_rows_and_their_slots_stay_bit_identical():
    config = {"name": "adam", "learning_rate": 0.05, "lazy": {"include": ["kernel"]}}
    params = problem()
    warm = gradients(2)  # every row touched: moments are non-zero everywhere
    _, _, before = run_keras(config, params, warm)
    cold = [{"kernel": np.where(np.arange(4)[:, None] == 1, g["kernel"], 0.0),
             "bias": g["bias"]} for g in gradients(3, seed=5)]  # only row 1 from now on
    _, weights, after = run_keras(config, params, warm + cold)
    _, weights_before, _ = run_keras(config, params, warm)
    untouched = [0, 2, 3]
    assert np.array_equal(weights["kernel"][untouched], weights_before["kernel"][untouched])
    for slot in ("kernel_momentum", "kernel_velocity"):
        assert np.array_equal(after[slot][untouched], before[slot][untouched])
        assert not np.array_equal(after[slot][1], before[slot][1])
    assert not np.array_equal(weights["kernel"][1], weights_before["kernel"][1])
    # The dense optimizer would have moved every row: the mask is what kept them.
    _, dense, _ = run_keras({"name": "adam", "learning_rate": 0.05}, params, warm + cold)
    assert not np.array_equal(dense["kernel"][untouched], weights_before["kernel"][untouched])


def test_lookahead_k1_alpha1_and_ema_momentum0_reduce_to_the_base_optimizer():
    params, grads = problem(), gradients(6)
    base = {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}
    _, plain, _ = run_keras(base, params, grads)
    _, looked, _ = run_keras({**base, "lookahead": {"k": 1, "alpha": 1.0}}, params, grads)
    optimizer, averaged, _ = run_keras({**base, "ema": {"momentum": 0.0}}, params, grads)
    for k in params:
        np.testing.assert_allclose(looked[k], plain[k], atol=ATOL)
        np.testing.assert_allclose(averaged[k], plain[k], atol=ATOL)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(optimizer.average_weights()[list(params).index(k)]),
            plain[k], atol=ATOL)


def test_evaluation_weights_swap_in_the_average_and_back():
    params, grads = problem(), gradients(4)
    config = {"name": "adam", "learning_rate": 0.1, "ema": {"momentum": 0.5}}
    variables = [keras.Variable(params[k], name=k) for k in params]
    optimizer = build_optimizer(config)
    optimizer.build(variables)
    initial = keras.ops.convert_to_numpy(variables[0])
    with optimizer.evaluation_weights():  # before any update: nothing to average yet
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variables[0]), initial)
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g[k]) for k in params], variables)
    raw = [keras.ops.convert_to_numpy(v) for v in variables]
    reference = run_reference(config, params, grads)
    with optimizer.evaluation_weights():
        for v, k in zip(variables, params):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(v), reference.ema_weights()[k],
                                       atol=ATOL)
    for v, value in zip(variables, raw):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), value)


def linear_regression(seed: int, rows: int) -> tuple[np.ndarray, np.ndarray, keras.Model]:
    """Random float32 inputs (4 features) and targets (3), and a seeded, uncompiled Dense(3)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4)).astype("float32")
    y = rng.normal(size=(rows, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    return x, y, keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])


@pytest.mark.parametrize("jit_compile", [False, True])
def test_under_model_fit_with_and_without_xla(jit_compile):
    """A linear model's MSE gradient is analytic, so fit() can be replayed in NumPy."""
    x, y, model = linear_regression(seed=3, rows=8)
    config = {"name": "adam", "learning_rate": 0.05, "weight_decay": 0.1,
              "exclude_from_weight_decay": ["bias"], "layer_adaptation": True,
              "gradient_accumulation_steps": 2, "lookahead": {"k": 2, "alpha": 0.5},
              "ema": {"momentum": 0.9}}
    model.compile(optimizer=build_optimizer(config), loss="mse", jit_compile=jit_compile)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in model.weights)
    reference = Reference({"kernel": kernel, "bias": bias}, **config)
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    for _ in range(3):
        for start in (0, 4):
            xb, yb = x[start:start + 4].astype(np.float64), y[start:start + 4].astype(np.float64)
            residual = xb @ reference.params["kernel"] + reference.params["bias"] - yb
            scale = 2.0 / residual.size
            reference.step({"kernel": scale * xb.T @ residual, "bias": scale * residual.sum(0)})
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.weights[0]),
                               reference.params["kernel"], atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.weights[1]),
                               reference.params["bias"], atol=1e-5)


def test_accumulation_of_n_micro_batches_equals_one_batch_of_n_times_b():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10 * 4 * 8, 6)).astype("float32")
    y = rng.integers(0, 3, size=len(x))

    def train(batch_size: int, accumulation: int):
        keras.utils.set_random_seed(7)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="tanh"),
                                  keras.layers.Dense(3)])
        model.compile(optimizer=build_optimizer({"name": "adam", "learning_rate": 0.01,
                                                 "gradient_accumulation_steps": accumulation}),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        for start in range(0, len(x), batch_size):
            model.train_on_batch(x[start:start + batch_size], y[start:start + batch_size])
        return model

    accumulated, big = train(8, 4), train(32, 1)
    assert int(accumulated.optimizer.iterations) == int(big.optimizer.iterations) == 10
    for a, b in zip(accumulated.weights, big.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b),
                                   atol=1e-5)


def test_lazy_rows_with_layer_adaptation_take_the_trust_ratio_over_the_touched_rows():
    """The decision in blogml.optimizers.derived: ‖θ‖ and ‖Δ‖ over the rows that move."""
    config = {"name": "adam", "learning_rate": 0.05, "layer_adaptation": True,
              "lazy": {"include": ["kernel"]}}
    assert_same(config, steps=7, sparse_rows=True)
    # Over the whole tensor the ratio differs: the reference would not match that.
    params, grads = problem(), gradients(1, sparse_rows=True)
    g = grads[0]["kernel"]
    touched = np.any(g != 0, axis=1)
    assert 0 < touched.sum() < 4
    reference = run_reference(config, params, grads)
    step = reference.params["kernel"][touched] - params["kernel"][touched]
    np.testing.assert_allclose(np.linalg.norm(step),
                               0.05 * np.linalg.norm(params["kernel"][touched]), rtol=1e-9)


def test_a_frozen_weights_ema_equals_it_exactly_in_float32():
    """m = 0.9999 for 1,000 updates: a weight that never moves averages to itself, bit for bit
    (an average kept as ē and divided by 1 − m^u comes back exact for 12 % of the values)."""
    rng = np.random.default_rng(0)
    frozen = keras.Variable(rng.normal(size=(64, 32)).astype("float32"), name="frozen")
    moving = keras.Variable(np.zeros(3, "float32"), name="moving")
    optimizer = build_optimizer({"name": "sgd", "learning_rate": 0.1,
                                 "ema": {"momentum": 0.9999}})
    optimizer.build([frozen, moving])
    zero = keras.ops.zeros((64, 32), "float32")
    one = keras.ops.ones((3,), "float32")
    for _ in range(1000):
        optimizer.apply([zero, one], [frozen, moving])
    average_frozen, average_moving = (keras.ops.convert_to_numpy(a)
                                      for a in optimizer.average_weights())
    assert average_frozen.dtype == np.float32
    np.testing.assert_array_equal(average_frozen, keras.ops.convert_to_numpy(frozen))
    # The moving weight θ_u = −0.1u: its average is Σ m^(u−i) θ_i / Σ m^(u−i).
    m, u = 0.9999, np.arange(1, 1001)
    expected = np.sum(m ** (1000 - u) * -0.1 * u) / np.sum(m ** (1000 - u))
    np.testing.assert_allclose(average_moving, expected, rtol=1e-5)


def test_lamb_with_weight_decay_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"optimizer.weight_decay: lamb with weight_decay is "
                                          r"not the LAMB paper's"):
        build_optimizer({"name": "lamb", "weight_decay": 0.01})
    assert build_optimizer({"name": "lamb", "weight_decay": 0.0, "ema": {"momentum": 0.9}})


EVERYTHING = {"name": "adam", "learning_rate": 0.05, "weight_decay": 0.01,
              "layer_adaptation": True, "gradient_accumulation_steps": 2,
              "lookahead": {"k": 2, "alpha": 0.5}, "ema": {"momentum": 0.9},
              "paramwise_lr": {"kernel": 2.0}, "clipnorm": 1.0,
              "schedule": {"piecewise_linear": {2: 1.0, 4: 0.5}}}


def test_get_config_round_trips_to_an_optimizer_making_the_same_updates():
    optimizer = build_optimizer(EVERYTHING)
    config = optimizer.get_config()
    rebuilt = type(optimizer).from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    params, grads = problem(), gradients(6)
    trajectories = []
    for candidate in (optimizer, rebuilt):
        variables = [keras.Variable(params[k], name=k) for k in params]
        for g in grads:
            candidate.apply([keras.ops.convert_to_tensor(g[k]) for k in params], variables)
        trajectories.append([keras.ops.convert_to_numpy(v) for v in variables])
    for a, b, start in zip(*trajectories, params.values()):
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, start)  # both moved, alike


def test_a_model_saved_with_model_save_reloads_with_its_optimizer(tmp_path):
    x, y, model = linear_regression(seed=4, rows=16)
    model.compile(optimizer=build_optimizer(EVERYTHING), loss="mse")
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)  # 8 micro, 4 updates
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 4
    # (Keras names a reloaded Sequential's weights `dense/...`, not `sequential/dense/...`:
    # the slots follow, so the values are compared in order.)
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b),
                                      err_msg=a.path)
    # Both continue alike: the reloaded one resumes the accumulation cycle and the averages.
    for candidate in (model, loaded):
        candidate.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b),
                                   atol=1e-6)


def test_theta_is_rounded_once_per_update_with_weight_decay():
    """The base steps a zeroed buffer, so θ + (Δ − η·wd·θ) is one float32 addition to θ.
    Stepping θ first and decaying after rounds θ twice, which this bit-exact check tells
    apart on most of the 4,096 elements."""
    rng = np.random.default_rng(2)
    theta = rng.normal(size=(64, 64)).astype("float32")
    grad = rng.normal(size=(64, 64)).astype("float32")
    lr, wd = np.float32(1e-3), np.float32(0.01)
    variable = keras.Variable(theta, name="kernel")
    optimizer = build_optimizer({"name": "sgd", "learning_rate": float(lr),
                                 "weight_decay": float(wd)})
    optimizer.apply([keras.ops.convert_to_tensor(grad)], [variable])
    delta = np.float32(0) + grad * -lr  # Keras's SGD step, taken on the zeroed buffer
    once = theta + (delta - (lr * wd) * theta)
    twice = (theta + delta) - (lr * wd) * theta
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), once)
    assert np.mean(once != twice) > 0.1


def test_a_base_step_that_reads_theta_reads_theta():
    """LAMB's step reads θ (its trust ratio ‖θ‖/‖u‖). Its writes are captured with θ still
    in the weight, so a paramwise multiplier of 0.5 halves the step Keras's LAMB makes
    itself (a step taken on a zeroed copy of the weight would have a trust ratio of 1)."""
    rng = np.random.default_rng(4)
    theta = rng.normal(size=(6, 5)).astype("float32")
    grad = keras.ops.convert_to_tensor(rng.normal(size=(6, 5)).astype("float32"))
    own = keras.Variable(theta, name="kernel")
    keras.optimizers.Lamb(learning_rate=0.01).apply([grad], [own])
    variable = keras.Variable(theta, name="kernel")
    build_optimizer({"name": "lamb", "learning_rate": 0.01,
                     "paramwise_lr": {"kernel": 0.5}}).apply([grad], [variable])
    lamb_step = keras.ops.convert_to_numpy(own) - theta
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable) - theta, 0.5 * lamb_step,
                               rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("theta, delta, expected", [
    ([3.0, 4.0], [0.6, 0.8], 0.1 * 5.0 / 1.0),  # η‖θ‖/‖Δ‖, worked by hand
    ([0.0, 0.0], [0.6, 0.8], 1.0),  # a fresh zero bias moves by its base step
    ([3.0, 4.0], [0.0, 0.0], 1.0),  # a zero step stays zero
])
def test_the_trust_ratio_is_one_where_either_norm_is_zero(theta, delta, expected):
    ratio, other = layer_adaptation.trust_ratios(
        [np.array(theta, "float32"), np.array([1.0], "float32")],
        [np.array(delta, "float32"), np.array([0.5], "float32")],
        [np.float32(0.1), np.float32(0.2)])
    assert float(keras.ops.convert_to_numpy(ratio)) == pytest.approx(expected, rel=1e-6)
    assert float(keras.ops.convert_to_numpy(other)) == pytest.approx(0.2 * 1.0 / 0.5, rel=1e-6)
    # With scales (the sign and paramwise multiplier of the steps): each ratio times its
    # scale, the undefined one (1) included.
    ratio, other = layer_adaptation.trust_ratios(
        [np.array(theta, "float32"), np.array([1.0], "float32")],
        [np.array(delta, "float32"), np.array([0.5], "float32")],
        [np.float32(0.1), np.float32(0.2)], scales=[-2.0, 0.5])
    assert float(keras.ops.convert_to_numpy(ratio)) == pytest.approx(-2.0 * expected, rel=1e-6)
    assert float(keras.ops.convert_to_numpy(other)) == pytest.approx(0.5 * 0.4, rel=1e-6)
