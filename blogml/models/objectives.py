"""Losses and exact metrics of the parameter-vector problems (keras.ops only).

`y_pred` is θ repeated once per example (see parameter_vector.py); `y_true` is that
example's noise. The metrics use θ alone, so they are exact, noise-free values of the
current parameters whatever batch they are evaluated on.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops


def _constant(values: np.ndarray, like):
    return ops.convert_to_tensor(np.asarray(values, np.float32), dtype=like.dtype)


class NoisyQuadratic(keras.losses.Loss):
    """½·Σ_i h_i (θ_i − ξ_i)² per example; its gradient is h ⊙ (θ − mean ξ)."""

    def __init__(self, curvatures: np.ndarray, name: str = "noisy_quadratic") -> None:
        super().__init__(name=name)
        self.curvatures = np.asarray(curvatures, np.float32)

    def call(self, y_true, y_pred):
        h = _constant(self.curvatures, y_pred)
        return 0.5 * ops.sum(h * ops.square(y_pred - y_true), axis=-1)


def _pairs(theta):
    """θ = (x_1, y_1, x_2, y_2, ...) per row -> x, y of shape (batch, dim/2)."""
    pairs = ops.reshape(theta, (-1, theta.shape[-1] // 2, 2))
    return pairs[..., 0], pairs[..., 1]


class NoisyRosenbrock(keras.losses.Loss):
    """Σ_j u_j (a − x_j)² + v_j·b·(y_j − x_j²)² per example, (u_j, v_j) its noise factors."""

    def __init__(self, a: float, b: float, name: str = "noisy_rosenbrock") -> None:
        super().__init__(name=name)
        self.a, self.b = a, b

    def call(self, y_true, y_pred):
        x, y = _pairs(y_pred)
        u, v = _pairs(y_true)
        terms = u * ops.square(self.a - x) + v * self.b * ops.square(y - ops.square(x))
        return ops.sum(terms, axis=-1)


Metric = Callable[..., object]


def quadratic_excess(curvatures: np.ndarray) -> Metric:
    """½·Σ h_i θ_i²: the expected loss minus its minimum (the optimum is θ* = 0)."""
    def suboptimality(y_true, y_pred):
        return 0.5 * ops.sum(_constant(curvatures, y_pred) * ops.square(y_pred), axis=-1)
    return suboptimality


def rosenbrock_value(a: float, b: float) -> Metric:
    """Σ_j (a − x_j)² + b(y_j − x_j²)²: the noise-free function, whose minimum is 0."""
    def suboptimality(y_true, y_pred):
        x, y = _pairs(y_pred)
        return ops.sum(ops.square(a - x) + b * ops.square(y - ops.square(x)), axis=-1)
    return suboptimality


def distance_to(optimum: np.ndarray) -> Metric:
    """‖θ − θ*‖ (Euclidean)."""
    def distance(y_true, y_pred):
        return ops.sqrt(ops.sum(ops.square(y_pred - _constant(optimum, y_pred)), axis=-1))
    return distance
