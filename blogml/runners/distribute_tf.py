"""The tf.distribute strategies (`mirrored`, `multi_worker`): TensorFlow only.

Keras 3's `train_on_batch` hands the same NumPy batch to every replica, and under
MultiWorkerMirroredStrategy its log reduction fails on scalar logs. So the step is run
here: the batch is cut into one slice per replica with
`strategy.experimental_distribute_values_from_function`, the model's own `train_step` runs
on each through `strategy.run`, and the logs are averaged over the replicas. With losses
scaled by 1/replicas and gradients summed (Keras, and `blogml.replicas` for blogml's own
losses and optimizer), a step equals the single-device step on the global batch.
Evaluation gives every replica the whole batch (the same results, and an evaluation batch
need not split evenly); every worker evaluates, as the collectives require. Prediction
calls the model once, outside the replicas.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from blogml import keras_adapter
from blogml.data.batches import Batch
from blogml.errors import BlogmlError
from blogml.runners.distribution import Distribution


def _local_devices(count: int | None) -> list[str]:
    """The first `count` (all: None) local GPUs, else the CPUs (logical ones included)."""
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if count is not None and count > len(devices):
        raise BlogmlError(f"distribution.devices: {count}, but this machine has "
                          f"{len(devices)} ({', '.join(d.name for d in devices)})")
    return [d.name for d in devices[:count]]


def _new_collective_keys() -> None:
    """Give the next MirroredStrategy collective group keys of its own.

    tf.distribute numbers the groups of its collectives from the class attribute
    `_collective_key_base`, the same for every strategy made in a process. The runs of a
    study share one process, so the second run's all-reduces would meet the first run's
    under the same keys and fail with "Shape mismatch in the collective instance". TF's own
    tests move the base for each strategy they make; so does this.
    """
    tf.distribute.MirroredStrategy._collective_key_base += _KEYS_PER_STRATEGY


_KEYS_PER_STRATEGY = 100_000  # group keys one strategy may use (as in TF's tests)

# The process's MultiWorkerMirroredStrategy and its timeout, made by its first multi_worker
# run. TensorFlow starts the worker's cluster server with the first one; a second one waits
# for a server that never comes, so later runs of a study reuse it (their collectives then
# take new keys from the same strategy).
_MULTI_WORKER: dict[int, tf.distribute.MultiWorkerMirroredStrategy] = {}


def _multi_worker_strategy(timeout: int) -> tf.distribute.MultiWorkerMirroredStrategy:
    if not _MULTI_WORKER:
        # A collective that waits longer than `timeout` for a peer (a dead worker) fails the
        # step, so the run ends with an error instead of hanging.
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
        _MULTI_WORKER[timeout] = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=options)
    if timeout not in _MULTI_WORKER:
        raise BlogmlError(f"distribution.timeout: {timeout}, but an earlier multi_worker run "
                          f"of this process set {next(iter(_MULTI_WORKER))}, and TensorFlow "
                          "starts a worker's cluster once per process; give the runs of one "
                          "command the same timeout, or run them as separate commands")
    return _MULTI_WORKER[timeout]


class TFStrategy(Distribution):
    def __init__(self, strategy: str, devices: int | None, timeout: int) -> None:
        if strategy == "mirrored":
            _new_collective_keys()
            self.strategy = tf.distribute.MirroredStrategy(devices=_local_devices(devices))
        else:
            self.strategy = _multi_worker_strategy(timeout)
        self.replicas = self.strategy.num_replicas_in_sync
        self._train_step: Callable[[Any], dict[str, Any]] | None = None
        self._test_step: Callable[[Any], dict[str, Any]] | None = None
        self._predict: Callable[[Any], Any] | None = None

    def scope(self) -> contextlib.AbstractContextManager:
        return self.strategy.scope()

    def train_on_batch(self, model: keras.Model, batch: Batch) -> dict[str, Any]:
        if self._train_step is None:
            self._build(model, batch)
            self._train_step = self._step(model.train_step)
        model.reset_metrics()
        return _floats(self._train_step(self._split(batch)))

    def test_on_batch(self, model: keras.Model, batch: Batch) -> dict[str, Any]:
        return self.evaluate(model, [batch])

    def evaluate(self, model: keras.Model, batches: Iterable[Batch]) -> dict[str, float]:
        """Each batch whole on every replica (the logs averaged over them are the batch's)."""
        logs: dict[str, Any] = {}
        model.reset_metrics()
        for batch in batches:
            if self._test_step is None:
                self._build(model, batch)
                self._test_step = self._step(model.test_step)
            logs = self._test_step(tuple(tf.nest.map_structure(tf.convert_to_tensor, part)
                                         for part in batch))
        return _floats(logs)

    def predict_on_batch(self, model: keras.Model, inputs: Any) -> Any:
        """The model called once, in cross-replica context (it reads the replicas' common
        weights): Keras's own `predict_on_batch` would run the batch on every replica and
        concatenate the copies."""
        if self._predict is None:
            self._predict = tf.function(lambda batch: model(batch, training=False))
        return self._predict(tf.nest.map_structure(tf.convert_to_tensor, inputs))

    def _build(self, model: keras.Model, batch: Batch) -> None:
        """Keras builds the compiled loss and metrics from the shapes of a first batch,
        under the strategy's scope (as `fit` does): from the global one here."""
        x, y = batch[0], batch[1] if len(batch) > 1 else None
        keras_adapter.symbolic_build(model, x, y)

    def _step(self, step: Callable[[Any], dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
        """`step` on each replica's data, its logs averaged over the replicas."""
        strategy = self.strategy

        @tf.function
        def run(data: Any) -> dict[str, Any]:
            logs = strategy.run(step, args=(data,))
            return {name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                    for name, value in logs.items()}

        return run

    def _split(self, batch: Batch) -> tuple[Any, ...]:
        """Each array (or dict of arrays) of `batch` as per-replica slices, in replica order
        across all workers (every worker holds the same global batch)."""
        replicas, devices = self.replicas, self.strategy.extended.worker_devices

        def slices(context: tf.distribute.experimental.ValueContext) -> tuple[Any, ...]:
            index = context.replica_id_in_sync_group
            # This worker's replicas are consecutive ids: place each slice on its device.
            with tf.device(devices[index % len(devices)]):
                return tuple(tf.nest.map_structure(
                    lambda array: tf.convert_to_tensor(np.array_split(array, replicas)[index]),
                    part) for part in batch)

        return self.strategy.experimental_distribute_values_from_function(slices)


def _floats(logs: dict[str, Any]) -> dict[str, float]:
    return {name: float(value) for name, value in logs.items()}
