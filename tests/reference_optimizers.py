"""NumPy re-implementation of the derived optimizers (README: Derived optimizers), written
from the formulas, to test against.

Base steps follow the Keras update rules (the "base update Δ" is whatever the base
optimizer does); the tricks follow README: Derived optimizers line by line, one
micro-batch per `step` call.
"""

from __future__ import annotations

import re

import numpy as np


def piecewise_multiplier(t: int, points: dict[int, float] | None) -> float:
    if not points:
        return 1.0
    knots = sorted(points.items())
    if knots[0][0] != 0:
        knots = [(0, 0.0)] + knots
    for (t0, m0), (t1, m1) in zip(knots, knots[1:]):
        if t < t1:
            return m0 + (m1 - m0) * (t - t0) / (t1 - t0)
    return knots[-1][1]


class Reference:
    def __init__(self, params: dict[str, np.ndarray], *, name: str = "adam",
                 learning_rate: float = 0.01, momentum: float = 0.0, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, schedule=None,
                 weight_decay: float = 0.0, exclude_from_weight_decay=(),
                 layer_adaptation: bool = False, exclude_from_layer_adaptation=(),
                 gradient_accumulation_steps: int = 1, lookahead=None, lazy=None, ema=None,
                 paramwise_lr=None) -> None:
        self.params = {k: v.astype(np.float64).copy() for k, v in params.items()}
        self.name, self.lr, self.momentum = name, learning_rate, momentum
        self.b1, self.b2, self.eps = beta_1, beta_2, epsilon
        self.points = schedule["piecewise_linear"] if schedule else None
        self.wd, self.wd_exclude = weight_decay, exclude_from_weight_decay
        self.la, self.la_exclude = layer_adaptation, exclude_from_layer_adaptation
        self.n = gradient_accumulation_steps
        self.lookahead = lookahead
        self.lazy = lazy["include"] if lazy else ()
        self.ema_m = ema["momentum"] if ema else None
        self.paramwise = paramwise_lr or {}
        zeros = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.m = {k: v.copy() for k, v in zeros.items()}
        self.v = {k: v.copy() for k, v in zeros.items()}
        self.acc = {k: v.copy() for k, v in zeros.items()}
        self.slow = {k: v.copy() for k, v in self.params.items()}
        self.average = {k: v.copy() for k, v in zeros.items()}
        self.micro = 0
        self.updates = 0

    @staticmethod
    def _match(patterns, name) -> bool:
        return any(re.search(p, name) for p in patterns)

    def _base(self, k: str, g: np.ndarray, lr: float) -> np.ndarray:
        """Δ of the Keras base optimizer; advances its slots."""
        if self.name == "sgd":
            self.m[k] = self.momentum * self.m[k] - lr * g
            return self.m[k].copy()
        t = self.updates + 1
        # Keras casts the Python floats β through float32 before raising them to the power t.
        b1, b2 = float(np.float32(self.b1)), float(np.float32(self.b2))
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        self.m[k] = self.m[k] + (g - self.m[k]) * (1 - self.b1)
        self.v[k] = self.v[k] + (g * g - self.v[k]) * (1 - self.b2)
        return -(self.m[k] * alpha) / (np.sqrt(self.v[k]) + self.eps)

    def step(self, grads: dict[str, np.ndarray]) -> None:
        for k, g in grads.items():
            self.acc[k] = self.acc[k] + g
        self.micro += 1
        if self.micro % self.n:
            return
        grads = {k: a / self.n for k, a in self.acc.items()}
        self.acc = {k: np.zeros_like(a) for k, a in self.acc.items()}
        lr = self.lr * piecewise_multiplier(self.updates, self.points)
        for k, g in grads.items():
            theta = self.params[k]
            multiplier = next((m for p, m in self.paramwise.items() if re.search(p, k)), 1.0)
            eta = lr * multiplier
            old_m, old_v = self.m[k].copy(), self.v[k].copy()
            delta = self._base(k, g, lr) * multiplier
            lazy = self._match(self.lazy, k)
            untouched = ~np.any(g != 0, axis=tuple(range(1, g.ndim))) if lazy else None
            if self.la and not self._match(self.la_exclude, k):
                # With lazy rows, r is taken over the rows the batch touched.
                rows = ~untouched if lazy else slice(None)
                theta_norm = np.linalg.norm(theta[rows])
                step_norm = np.linalg.norm(delta[rows] / eta) if eta > 0 else 0.0  # ‖θ‖/‖Δ/η‖
                if theta_norm > 0 and step_norm > 0:
                    delta = delta * theta_norm / step_norm
            new = theta + delta
            if self.wd and not self._match(self.wd_exclude, k):
                new = new - eta * self.wd * theta
            if lazy:
                new[untouched] = theta[untouched]
                self.m[k][untouched] = old_m[untouched]
                self.v[k][untouched] = old_v[untouched]
            self.params[k] = new
        self.updates += 1
        if self.lookahead and self.updates % self.lookahead["k"] == 0:
            for k in self.params:
                self.slow[k] = self.slow[k] + self.lookahead["alpha"] * (self.params[k]
                                                                        - self.slow[k])
                self.params[k] = self.slow[k].copy()
        if self.ema_m is not None:
            for k in self.params:
                self.average[k] = self.ema_m * self.average[k] + (1 - self.ema_m) * self.params[k]

    def ema_weights(self) -> dict[str, np.ndarray]:
        return {k: a / (1 - self.ema_m ** self.updates) for k, a in self.average.items()}
