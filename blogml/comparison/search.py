"""Search spaces, their quasirandom points, and the pick of the best trial (README: Tuning).

    search:
      learning_rate: {log_uniform: [1.0e-4, 1.0e-1]}
      beta_1: {uniform: [0.8, 0.99]}
      lookahead.k: {choice: [5, 10]}
    budget: 8

A space of d keys gets `budget` points of a scrambled Halton sequence in [0, 1)^d (bases 2,
3, 5, ...; scrambled by one seeded random shift modulo 1 per dimension, Cranley and
Patterson's rotation, which keeps the sequence's low discrepancy), each coordinate scaled
to its key's range. Quasirandom points cover a space more evenly than random ones for a
small budget; with the same space and seed, every optimizer gets the same points, so a
comparison does not hinge on one optimizer's luck of the draw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

KINDS = ("log_uniform", "uniform", "choice")
PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53)


def radical_inverse(index: int, base: int) -> float:
    """The van der Corput radical inverse: the digits of `index` in `base`, mirrored."""
    result, scale = 0.0, 1.0 / base
    while index:
        index, digit = divmod(index, base)
        result += digit * scale
        scale /= base
    return result


def halton(count: int, dims: int) -> np.ndarray:
    """The first `count` points of the (unscrambled) Halton sequence in [0, 1)^dims,
    starting at index 0 (the origin), as `scipy.stats.qmc.Halton(dims, scramble=False)`."""
    if dims > len(PRIMES):
        raise ValueError(f"at most {len(PRIMES)} searched keys")
    return np.array([[radical_inverse(i, PRIMES[d]) for d in range(dims)]
                     for i in range(count)]).reshape(count, dims)


def quasirandom(count: int, dims: int, seed: int) -> np.ndarray:
    """`count` points of the Halton sequence rotated by a random shift drawn from `seed`."""
    shift = np.random.default_rng(seed).random(dims)
    return (halton(count, dims) + shift) % 1.0


def scale(unit: float, spec: Mapping[str, Any]) -> Any:
    """A coordinate in [0, 1) to a value of one key's range (`{log_uniform: [a, b]}`,
    `{uniform: [a, b]}` or `{choice: [v1, v2, ...]}`)."""
    kind, values = next(iter(spec.items()))
    if kind == "log_uniform":
        low, high = values
        return math.exp(math.log(low) + unit * (math.log(high) - math.log(low)))
    if kind == "uniform":
        low, high = values
        return low + unit * (high - low)
    return values[min(int(unit * len(values)), len(values) - 1)]


def points(space: Mapping[str, Mapping[str, Any]], budget: int,
           seed: int) -> list[dict[str, Any]]:
    """The `budget` points of a space, each {key: value} in the space's key order."""
    keys = list(space)
    unit = quasirandom(budget, len(keys), seed)
    return [{key: scale(float(unit[i, d]), space[key]) for d, key in enumerate(keys)}
            for i in range(budget)]


def with_point(optimizer: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """An optimizer section with a point's values set (keys may be dotted:
    `lookahead.alpha`)."""
    section = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in optimizer.items()}
    for key, value in point.items():
        *parents, leaf = key.split(".")
        node = section
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return section


def best_trial(scores: Sequence[float | None], mode: str) -> int | None:
    """The index of the best trial by its score (mean over the tuning seeds of the
    validation metric); ties go to the lower index, the earlier point of the sequence,
    and a trial without a score (failed, never evaluated, not finite) is never best. None
    when no trial has one."""
    candidates = [(value if mode == "min" else -value, index)
                  for index, value in enumerate(scores)
                  if value is not None and math.isfinite(value)]
    return min(candidates)[1] if candidates else None
