"""What a train step needs to know about tf.distribute replicas (TensorFlow only).

Under `mirrored`/`multi_worker` every replica runs the step on its slice of the global
batch. The model and optimizer code stays backend-neutral and asks this module the few
things that differ: how many replicas share the batch, which one this is, and the sum of a
value over all of them. Outside a tf.distribute replica step (one device, JAX, torch; JAX's
DataParallel runs the global program, so it needs nothing of this) there is one replica and
every function is the identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras


def _replica_context() -> Any:
    """The tf.distribute replica context of a step with more than one replica, else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return None
    context = tf.distribute.get_replica_context()
    return context if context is not None and context.num_replicas_in_sync > 1 else None


def count() -> int:
    """Replicas that share the global batch in this step."""
    context = _replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def index() -> Any:
    """This replica's position (0 .. count − 1): a tensor in a replica step, else 0."""
    context = _replica_context()
    return 0 if context is None else context.replica_id_in_sync_group


def all_sum(values: Sequence[Any]) -> list[Any]:
    """Each value summed over the replicas (every replica gets the same sums)."""
    context = _replica_context()
    if context is None:
        return list(values)
    import tensorflow as tf

    return list(context.all_reduce(tf.distribute.ReduceOp.SUM, list(values)))


def loss_share(loss: Any) -> Any:
    """This replica's share of a global-batch mean loss: the mean over its slice / count.

    Summing the replicas' gradients of it gives the gradient of the global-batch mean, as on
    one device. Keras scales its compiled losses so; a model's own `compute_loss` must call
    this (the trainer's loss tracker multiplies the count back for the logs). It holds for
    a mean over equal slices; a mean over masked positions, whose count differs from slice
    to slice, divides its slice's sum by the `all_sum` of the counts instead (NL2SQL).
    """
    replicas = count()
    return loss if replicas == 1 else loss / replicas
