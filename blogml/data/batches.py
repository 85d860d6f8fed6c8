"""Deterministic, resumable batching of in-memory arrays.

The order of training batches is a pure function of (seed, global step): pass `p` over the
data uses the permutation drawn from `numpy.random.default_rng([seed, p])`. Resuming at
step `s` therefore needs nothing but `s`, and yields exactly the batches an uninterrupted
run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

Batch = tuple[np.ndarray, ...]


class ArrayBatches:
    """Shuffled, fixed-size training batches over parallel arrays (remainder dropped)."""

    def __init__(self, arrays: Sequence[np.ndarray], batch_size: int, seed: int) -> None:
        sizes = {len(a) for a in arrays}
        if len(sizes) != 1:
            raise ValueError(f"arrays differ in length: {sorted(sizes)}")
        self.arrays = tuple(arrays)
        self.num_examples = sizes.pop()
        if batch_size > self.num_examples:
            raise ValueError(f"batch size {batch_size} exceeds the {self.num_examples} examples")
        self.batch_size = batch_size
        self.seed = seed
        self.batches_per_pass = self.num_examples // batch_size

    def order(self, data_pass: int) -> np.ndarray:
        """The example order of one pass over the data."""
        return np.random.default_rng([self.seed, data_pass]).permutation(self.num_examples)

    def batches(self, start_step: int = 0) -> Iterator[Batch]:
        """Endless training batches, starting with the one for global step `start_step`."""
        data_pass, index = divmod(start_step, self.batches_per_pass)
        while True:
            order = self.order(data_pass)
            for i in range(index, self.batches_per_pass):
                take = order[i * self.batch_size:(i + 1) * self.batch_size]
                yield tuple(a[take] for a in self.arrays)
            data_pass, index = data_pass + 1, 0


def eval_batches(arrays: Sequence[np.ndarray], batch_size: int) -> Iterator[Batch]:
    """Batches in order, the last one possibly smaller: every example is seen once."""
    num_examples = len(arrays[0])
    for start in range(0, num_examples, batch_size):
        yield tuple(a[start:start + batch_size] for a in arrays)
