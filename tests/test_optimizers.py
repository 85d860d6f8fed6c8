"""build_optimizer: Keras base optimizers by name, with their own arguments."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from blogml.errors import ConfigError
from blogml.optimizers import build_optimizer

pytestmark = [pytest.mark.backend_neutral, pytest.mark.models]


@pytest.mark.parametrize("name, cls", [
    ("sgd", keras.optimizers.SGD), ("adam", keras.optimizers.Adam),
    ("rmsprop", keras.optimizers.RMSprop),
    ("lamb", keras.optimizers.Lamb), ("lion", keras.optimizers.Lion),
])
def test_names_map_to_keras_classes(name, cls):
    # On torch, Keras substitutes subclasses that call torch's fused kernels.
    optimizer = build_optimizer({"name": name})
    assert isinstance(optimizer, cls) and type(optimizer).__name__.endswith(cls.__name__)


def test_sgd_with_momentum_follows_its_update_rule():
    optimizer = build_optimizer({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9})
    theta = keras.Variable(np.array([1.0, -2.0], "float32"))
    grads = [np.array([0.5, 1.0], "float32"), np.array([-1.0, 2.0], "float32")]
    expected, velocity = np.array([1.0, -2.0]), np.zeros(2)
    for g in grads:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g), theta)])
        velocity = 0.9 * velocity - 0.1 * g  # Keras: v = m v - η g; θ += v
        expected = expected + velocity
    np.testing.assert_allclose(keras.ops.convert_to_numpy(theta), expected, atol=1e-6)


def test_arguments_reach_the_optimizer():
    optimizer = build_optimizer({"name": "adam", "learning_rate": "3e-4", "beta_2": 0.98})
    assert optimizer.beta_2 == 0.98
    assert float(optimizer.learning_rate) == pytest.approx(3e-4)


# Hand-worked clipping. Gradients g_a = (3, -4) (norm 5) and g_b = (12,) (norm 12); jointly
# norm 13. Plain SGD with η = 0.5, so θ moves by exactly −0.5 · clip(g): clipping the update
# (0.5·g, norm 2.5 and 6) instead of the gradient would give other numbers.
THETA = ([1.0, 1.0], [0.0])
GRADS = ([3.0, -4.0], [12.0])
CLIPPED = [
    ({}, GRADS),
    ({"clipnorm": 2.6}, ([1.56, -2.08], [2.6])),  # each to norm 2.6: ×0.52 and ×2.6/12
    ({"clipnorm": 6.0}, ([3.0, -4.0], [6.0])),  # g_a is within the norm: unchanged
    ({"global_clipnorm": 2.6}, ([0.6, -0.8], [2.4])),  # together: both ×2.6/13 = 0.2
    ({"global_clipnorm": 13.5}, GRADS),  # within the joint norm: unchanged
    ({"clipvalue": 3.5}, ([3.0, -3.5], [3.5])),  # elementwise to [−3.5, 3.5]
]
# Derived optimizers (any trick on) run their own update: the clipping must happen there
# too. `ema` leaves θ's own step alone; with accumulation over (2g, 0) the step clips the
# mean g, once (clipping each micro-batch would halve the clipped values above).
DERIVED = {"plain": ({}, 1), "ema": ({"ema": {"momentum": 0.5}}, 1),
           "accumulation": ({"gradient_accumulation_steps": 2}, 2)}


def _sgd_step(config: dict, micro_batches: int) -> list[np.ndarray]:
    optimizer = build_optimizer({"name": "sgd", "learning_rate": 0.5, **config})
    from blogml.optimizers.derived import DerivedOptimizer

    assert isinstance(optimizer, DerivedOptimizer) == (config.keys() & {
        "ema", "gradient_accumulation_steps"} != set())
    variables = [keras.Variable(np.array(t, "float32"), name=f"v{i}")
                 for i, t in enumerate(THETA)]
    optimizer.build(variables)
    batches = [[micro_batches * np.array(g, "float32") for g in GRADS]]
    batches += [[np.zeros_like(g) for g in batches[0]]] * (micro_batches - 1)
    for grads in batches:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 1  # one applied update
    return [keras.ops.convert_to_numpy(v) for v in variables]


@pytest.mark.parametrize("derived", list(DERIVED))
@pytest.mark.parametrize("clipping, clipped", CLIPPED, ids=[
    "none", "clipnorm", "clipnorm-within", "global_clipnorm", "global_clipnorm-within",
    "clipvalue"])
def test_clipping_is_applied_to_the_gradient_as_worked_by_hand(clipping, clipped, derived):
    tricks, micro_batches = DERIVED[derived]
    weights = _sgd_step({**clipping, **tricks}, micro_batches)
    for weight, theta, g in zip(weights, THETA, clipped):
        np.testing.assert_allclose(weight, np.array(theta) - 0.5 * np.array(g), atol=1e-6)


def test_bad_values_are_config_errors_naming_the_key():
    with pytest.raises(ConfigError, match=r"optimizer.momentum: must be a number >= 0 and <= 1"):
        build_optimizer({"name": "sgd", "momentum": 2})
    with pytest.raises(ConfigError, match=r"optimizer.beta_1: is an argument of adam"):
        build_optimizer({"name": "sgd", "beta_1": 0.9})
