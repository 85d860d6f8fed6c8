"""`BaseRunner.evaluate` is the mean over examples: each batch weighted by how many examples
it holds, whether the inputs are one array or a dict of arrays (the last batch is short)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from blogml.runners.base import BaseRunner


@pytest.mark.parametrize("as_dict", [False, True])
def test_batches_are_weighted_by_their_examples(as_dict):
    sizes, losses = [3, 1], {3: 1.0, 1: 5.0}

    def inputs(size):
        x = np.zeros((size, 2))
        return {"tokens": x, "segments": x, "mask": x, "columns": x} if as_dict else x

    def test_on_batch(model, batch):
        return {"loss": losses[len(batch[1])]}

    runner = SimpleNamespace(
        eval_batches=lambda split: iter([(inputs(n), np.zeros(n)) for n in sizes]),
        distribution=SimpleNamespace(test_on_batch=test_on_batch), model=None)
    assert BaseRunner.evaluate(runner, "val") == {"loss": pytest.approx((3 * 1.0 + 5.0) / 4)}
