"""Batch normalisation with the statistics of the global batch, however it is split.

Under a tf.distribute strategy each replica holds a slice of the global batch, and Keras's
BatchNormalization would normalise each slice with that slice's own mean and variance: a
different function from the one-device model. This layer sums the statistics over the
replicas (`blogml.replicas`) before normalising, so training under `mirrored` or
`multi_worker` equals training on one device. The variance is taken in two passes (the
global mean first, then the mean squared deviation from it), as on one device, rather than
as E[x²] − E[x]², which cancels badly when the mean is large (Keras's own
`synchronized=True` does that, and only on TensorFlow; this overrides the same `_moments`
hook, so a Keras upgrade that renames it fails the distribution tests). With one replica (one
device, or JAX's DataParallel, which computes on the global batch itself) it is Keras's
layer unchanged, with the same weights, so checkpoints carry over either way.
"""

from __future__ import annotations

import keras
from keras import ops

from blogml import replicas


class GlobalBatchNormalization(keras.layers.BatchNormalization):
    def _moments(self, inputs, mask):
        if replicas.count() == 1:
            return super()._moments(inputs, mask)
        if mask is not None:
            raise NotImplementedError("GlobalBatchNormalization takes no mask across replicas")
        axes = self._reduction_axes
        shape = ops.shape(inputs)
        local_count = 1
        for axis in axes:
            local_count = local_count * shape[axis]
        total, count = replicas.all_sum([ops.sum(inputs, axis=axes, keepdims=True),
                                         ops.cast(local_count, inputs.dtype)])
        mean = total / count
        [squares] = replicas.all_sum([ops.sum(ops.square(inputs - mean), axis=axes,
                                              keepdims=True)])
        # Keras's layer expects one value per feature, as ops.moments gives them.
        return ops.reshape(mean, (-1,)), ops.reshape(squares / count, (-1,))
