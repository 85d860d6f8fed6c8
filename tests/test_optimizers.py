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


def test_arguments_and_clipping_reach_the_optimizer():
    optimizer = build_optimizer({"name": "adam", "learning_rate": "3e-4", "beta_2": 0.98,
                                 "global_clipnorm": 1.0})
    assert optimizer.beta_2 == 0.98 and optimizer.global_clipnorm == 1.0
    assert float(optimizer.learning_rate) == pytest.approx(3e-4)


def test_bad_values_are_config_errors_naming_the_key():
    with pytest.raises(ConfigError, match=r"optimizer.momentum: must be a number >= 0 and <= 1"):
        build_optimizer({"name": "sgd", "momentum": 2})
    with pytest.raises(ConfigError, match=r"optimizer.beta_1: is an argument of adam"):
        build_optimizer({"name": "sgd", "beta_1": 0.9})
