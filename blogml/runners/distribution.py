"""`distribution.strategy`: the engine that spreads each training step over devices.

The loop in `base.py` asks a `Distribution` for a few things only: a scope to build the
model and optimizer in, one training or prediction step on a global batch, and an
evaluation over a split's batches (which process writes the run directory is
`workers.is_chief_process`, decided before Keras starts). `none` is the plain
single-device path; `data_parallel` is keras.distribution.DataParallel (JAX shards each
batch itself inside `train_on_batch`); `mirrored` and `multi_worker` are tf.distribute
strategies, behind `distribute_tf`; `strategies.create` picks one from the config.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable
from typing import Any

import keras

from blogml.data.batches import Batch
from blogml.errors import BlogmlError


class Distribution:
    """One device (`strategy: none`)."""

    replicas = 1

    def scope(self) -> contextlib.AbstractContextManager:
        """Where the model and its optimizer must be built."""
        return contextlib.nullcontext()

    def train_on_batch(self, model: keras.Model, batch: Batch) -> dict[str, Any]:
        """One update on the global batch; the logs as `model.train_on_batch` returns them."""
        return model.train_on_batch(*batch, return_dict=True)

    def test_on_batch(self, model: keras.Model, batch: Batch) -> dict[str, Any]:
        """The compiled metrics of one evaluation batch, as `model.test_on_batch` gives them."""
        return model.test_on_batch(*batch, return_dict=True)

    def evaluate(self, model: keras.Model, batches: Iterable[Batch]) -> dict[str, float]:
        """The compiled metrics over every batch: reset once, accumulated, read once, so a
        metric of the whole split (the VQ-VAE's code histogram) sees all of it. Slower per
        batch than `test_on_batch` on TensorFlow (a tf.data pipeline per call)."""
        with warnings.catch_warnings():
            # Keras warns when a generator of unknown length ends: that is how a split ends.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            logs = model.evaluate(iter(batches), verbose=0, return_dict=True)
        return {name: float(value) for name, value in logs.items()}

    def predict_on_batch(self, model: keras.Model, inputs: Any) -> Any:
        """The model's outputs on one batch, one row per input row."""
        return model.predict_on_batch(inputs)

    def close(self) -> None:
        """Undo what the distribution set for the process."""


class DataParallel(Distribution):
    """keras.distribution.DataParallel over the first `devices` local devices (JAX).

    Set globally before the model is built (its variables are then replicated) and kept
    for the run: Keras's JAX trainer shards every batch it is given along the batch axis.
    """

    def __init__(self, devices: int | None) -> None:
        available = keras.distribution.list_devices()
        if devices is not None and devices > len(available):
            raise BlogmlError(f"distribution.devices: {devices}, but this machine has "
                              f"{len(available)} ({', '.join(available)})")
        chosen = available[:devices] if devices else available
        self.replicas = len(chosen)
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=chosen))

    def close(self) -> None:
        keras.distribution.set_distribution(None)
