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


def _dummy_inputs(size: int) -> np.ndarray:
    """The input of a parameter-vector model: one zero per example, only its count matters."""
    return np.zeros((size, 1), np.float32)


def curvatures(dim: int, low: float, high: float) -> np.ndarray:
    """The noisy quadratic's h_i: `dim` values log-spaced from `low` to `high`."""
    return np.geomspace(low, high, dim).astype(np.float32)


def quadratic_noise_splits(sizes: dict[str, int], dim: int, noise: float,
                           seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Noisy-quadratic splits: (dummy inputs, ξ) with ξ ~ N(0, noise²) per example.

    The optimum of the expected loss is θ* = 0; on a finite training set the empirical
    optimum is the mean ξ, about noise/√num_train away, which costs an excess loss of about
    ½·Σh·noise²/num_train (negligible beside what optimizer noise costs).
    """
    splits = {}
    for i, (name, size) in enumerate(sizes.items(), start=1):
        rng = np.random.default_rng([seed, i])
        xi = (noise * rng.standard_normal((size, dim))).astype(np.float32)
        splits[name] = (_dummy_inputs(size), xi)
    return splits


def rosenbrock_noise_splits(sizes: dict[str, int], dim: int, noise: float,
                            seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Rosenbrock splits: (dummy inputs, factors), one factor per term of each pair.

    Factors are log-normal with mean 1, exp(σz − σ²/2), so the expected loss is the plain
    Rosenbrock function (same optimum) while each example's gradient is scaled randomly:
    multiplicative gradient noise. With noise 0 every factor is exactly 1.
    """
    splits = {}
    for i, (name, size) in enumerate(sizes.items(), start=1):
        z = np.random.default_rng([seed, i]).standard_normal((size, dim))
        factors = np.exp(noise * z - noise ** 2 / 2).astype(np.float32)
        splits[name] = (_dummy_inputs(size), factors)
    return splits


def zipf_probabilities(vocab_size: int, exponent: float) -> np.ndarray:
    """P(token id t) for t = 1 .. vocab_size − 1, ∝ t^-exponent (id = frequency rank)."""
    weights = np.arange(1, vocab_size, dtype=np.float64) ** -exponent
    return weights / weights.sum()


def bag_splits(sizes: dict[str, int], vocab_size: int, zipf_exponent: float, min_length: int,
               max_length: int, num_classes: int, teacher_dim: int, label_noise: float,
               seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Embedding-bag splits: (token ids [size, max_length], labels).

    Token ids are drawn from a Zipf law (id 1 is the most frequent, 0 is padding at the end
    of bags shorter than `max_length`), so most of a large vocabulary is rare and many rows
    of an embedding table never appear in a batch: their gradient rows are exactly zero.
    The label is the argmax of a random linear map of the bag's mean teacher embedding
    (centred on the expected token embedding, so that the few most frequent tokens do not
    decide most labels), which an Embedding → mean → Dense model can represent exactly; a
    fraction `label_noise` is then replaced by random classes. All splits share one teacher.
    """
    teacher = np.random.default_rng([seed, 0])
    embeddings = teacher.standard_normal((vocab_size, teacher_dim)).astype(np.float32)
    embeddings[0] = 0.0
    readout = teacher.standard_normal((teacher_dim, num_classes)).astype(np.float32)
    probabilities = zipf_probabilities(vocab_size, zipf_exponent)
    centre = probabilities @ embeddings[1:]
    splits = {}
    for i, (name, size) in enumerate(sizes.items(), start=1):
        rng = np.random.default_rng([seed, i])
        ids = rng.choice(vocab_size - 1, size=(size, max_length), p=probabilities) + 1
        lengths = rng.integers(min_length, max_length + 1, size=size)
        ids[np.arange(max_length)[None, :] >= lengths[:, None]] = 0
        mean = embeddings[ids].sum(axis=1) / lengths[:, None]
        labels = np.argmax((mean - centre) @ readout, axis=1)
        noisy = rng.random(size) < label_noise
        labels[noisy] = rng.integers(0, num_classes, size=int(noisy.sum()))
        splits[name] = (ids.astype(np.int32), labels.astype(np.int32))
    return splits
