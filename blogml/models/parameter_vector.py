"""A model whose only weights are one parameter vector θ (the noisy quadratic, Rosenbrock).

Written as an ordinary Keras model so that these problems train through the same
`model.train_on_batch` loop, optimizers, checkpoints and resume as every other task: the
model ignores its (dummy) input except for the batch size and outputs θ once per example;
the loss compares that row with the example's noise, which the batch carries as targets.
"""

from __future__ import annotations

import keras
import numpy as np


class ParameterVector(keras.layers.Layer):
    """Holds θ (the variable `theta`); returns it as one row per example of the input."""

    def __init__(self, initial: np.ndarray, **kwargs) -> None:
        super().__init__(**kwargs)
        self.initial = np.asarray(initial, np.float32)

    def build(self, input_shape: tuple) -> None:
        self.theta = self.add_weight(shape=self.initial.shape, name="theta",
                                     initializer=keras.initializers.Zeros())
        self.theta.assign(self.initial)

    def call(self, inputs):
        # zeros (batch, 1) + θ (dim,) -> (batch, dim): exact copies of θ, any backend.
        return keras.ops.zeros_like(inputs[:, :1]) + self.theta


def build_parameter_model(initial: np.ndarray, name: str) -> keras.Model:
    """A model with the single variable `parameters/theta`, starting at `initial`."""
    inputs = keras.Input((1,), name="dummy")
    # float32 whatever the dtype policy: θ is the output itself, and rounding it to float16
    # would change the problem being optimised, not just the arithmetic.
    theta = ParameterVector(initial, name="parameters", dtype="float32")(inputs)
    return keras.Model(inputs, theta, name=name)
