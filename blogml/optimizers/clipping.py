"""Gradient clipping, on the mean gradient of an applied update.

Keras's optimizers clip in `apply`, per call: under accumulation that would clip every
micro-batch, and under tf.distribute every replica's share before the sum. The derived
optimizer clips once, the summed mean gradient of the update, with Keras's formulas.
"""

from __future__ import annotations

from keras import ops


def _norm(value):
    return ops.sqrt(ops.sum(ops.square(value)))


def clip(grads: list, clipnorm: float | None, global_clipnorm: float | None,
         clipvalue: float | None) -> list:
    """g·c / max(‖g‖, c) each (clipnorm), all by c / max(‖G‖, c) (global_clipnorm), or each
    element to [−c, c] (clipvalue); unchanged when none is set (at most one may be)."""
    if clipnorm is None and global_clipnorm is None and clipvalue is None:
        return grads
    grads = [ops.convert_to_tensor(g) for g in grads]  # TensorFlow's IndexedSlices too
    if clipnorm is not None:
        return [g * clipnorm / ops.maximum(_norm(g), clipnorm) for g in grads]
    if global_clipnorm is not None:
        total = ops.sqrt(sum(ops.sum(ops.square(g)) for g in grads))
        return [g * (global_clipnorm / ops.maximum(total, global_clipnorm)) for g in grads]
    return [ops.clip(g, -clipvalue, clipvalue) for g in grads]
