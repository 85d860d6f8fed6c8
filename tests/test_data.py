"""Deterministic, resumable batch order and the synthetic teacher data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from blogml.data.batches import ArrayBatches, eval_batches
from blogml.data.synthetic import teacher_splits


def test_each_pass_is_a_permutation_and_passes_differ():
    x = np.arange(20)
    stream = ArrayBatches([x, x * 10], batch_size=4, seed=0)
    first = list(itertools.islice(stream.batches(), 10))  # two passes of 5 batches
    pass_0 = np.concatenate([b[0] for b in first[:5]])
    pass_1 = np.concatenate([b[0] for b in first[5:]])
    assert sorted(pass_0) == list(range(20)) and sorted(pass_1) == list(range(20))
    assert not np.array_equal(pass_0, pass_1)
    assert all(np.array_equal(b[1], b[0] * 10) for b in first)  # arrays stay aligned


def test_starting_at_step_s_continues_the_same_stream():
    x = np.arange(50)
    full = list(itertools.islice(ArrayBatches([x], 8, seed=3).batches(), 20))
    for start in (0, 1, 5, 6, 13):
        resumed = list(itertools.islice(ArrayBatches([x], 8, seed=3).batches(start), 20 - start))
        assert all(np.array_equal(a[0], b[0]) for a, b in zip(full[start:], resumed))
    other_seed = next(ArrayBatches([x], 8, seed=4).batches())
    assert not np.array_equal(full[0][0], other_seed[0])


def test_remainder_is_dropped_in_training_but_evaluated():
    x = np.arange(10)
    assert ArrayBatches([x], 4, seed=0).batches_per_pass == 2
    assert [len(b[0]) for b in eval_batches([x], 4)] == [4, 4, 2]
    with pytest.raises(ValueError, match="exceeds"):
        ArrayBatches([x], 11, seed=0)


def test_teacher_splits_are_reproducible_learnable_and_noisy_as_asked():
    a = teacher_splits({"train": 4000, "val": 500}, 6, 3, label_noise=0.2, seed=5)
    b = teacher_splits({"train": 4000, "val": 500}, 6, 3, label_noise=0.2, seed=5)
    assert np.array_equal(a["train"][0], b["train"][0]) and np.array_equal(a["val"][1], b["val"][1])
    assert not np.array_equal(a["train"][0][:500], a["val"][0])
    clean = teacher_splits({"train": 4000}, 6, 3, label_noise=0.0, seed=5)["train"][1]
    # Same inputs (same seed stream), so the flipped fraction is measurable: a random class
    # replaces 20 % of labels and equals the old one a third of the time.
    changed = np.mean(clean != a["train"][1])
    assert changed == pytest.approx(0.2 * 2 / 3, abs=0.03)
    assert set(np.unique(clean)) == {0, 1, 2}
