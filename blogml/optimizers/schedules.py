"""Piecewise-linear learning-rate multiplier (README: Derived optimizers; the post
"Keras梯度累积优化器")."""

from __future__ import annotations

from collections.abc import Mapping

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="blogml")
class PiecewiseLinear(keras.optimizers.schedules.LearningRateSchedule):
    """η_t = learning_rate × multiplier(t), t = number of updates already applied.

    The multiplier is linear between the given points, starts from 0 at t = 0 unless a
    point at 0 is given, and stays at the last point's value after it:
    `{1000: 1.0, 2000: 0.1}` is a 1000-update warm-up to 1.0, then a decay to 0.1.
    """

    def __init__(self, learning_rate: float, points: Mapping[int, float]) -> None:
        super().__init__()
        self.learning_rate = float(learning_rate)
        self.points = {int(t): float(m) for t, m in sorted(points.items())}
        if 0 not in self.points:
            self.points = {0: 0.0, **self.points}

    def multiplier(self, step):
        # In the weights' dtype (floatx), so a float64 model gets a float64 learning rate.
        dtype = keras.backend.floatx()
        t = ops.cast(step, dtype)
        knots = list(self.points.items())
        value = ops.convert_to_tensor(knots[-1][1], dtype)
        # Later segments first, so that the earliest segment containing t wins.
        for (t0, m0), (t1, m1) in reversed(list(zip(knots, knots[1:]))):
            inside = m0 + (m1 - m0) * (t - t0) / (t1 - t0)
            value = ops.where(t < t1, inside, value)
        return value

    def __call__(self, step):
        return self.learning_rate * self.multiplier(step)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate,
                "points": {str(t): m for t, m in self.points.items()}}
