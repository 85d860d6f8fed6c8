"""Synthetic data generated from a seed (no files, no network)."""

from __future__ import annotations

import numpy as np


def teacher_splits(sizes: dict[str, int], num_features: int, num_classes: int,
                   label_noise: float, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Classification splits: Gaussian inputs labelled by a random two-layer tanh "teacher".

    The labels are a smooth non-linear function of the inputs, so a small MLP learns them
    well (accuracy approaching 1 − label_noise) while a linear model cannot fit them
    exactly. A fraction `label_noise` of labels is replaced by a uniformly random class.
    All splits share one teacher and are drawn independently from `seed`.
    """
    teacher = np.random.default_rng([seed, 0])
    w1 = teacher.normal(size=(num_features, 4 * num_classes)) / np.sqrt(num_features)
    w2 = teacher.normal(size=(4 * num_classes, num_classes))
    splits = {}
    for i, (name, size) in enumerate(sizes.items(), start=1):
        rng = np.random.default_rng([seed, i])
        x = rng.normal(size=(size, num_features)).astype(np.float32)
        labels = np.argmax(np.tanh(x @ w1) @ w2, axis=1)
        noisy = rng.random(size) < label_noise
        labels[noisy] = rng.integers(0, num_classes, size=int(noisy.sum()))
        splits[name] = (x, labels.astype(np.int32))
    return splits
