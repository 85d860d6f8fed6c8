"""How the tricks' passes over the weights run as few kernels as each backend allows.

After the base step the tricks make a handful of elementwise passes over every weight
(scale, decay, add, select, average) and two reductions per adapted weight (its norms).
JAX compiles the whole step with XLA, which fuses the passes. TensorFlow without XLA
(Keras's default on a CPU) runs one kernel per op, each allocating a buffer the size of
the weight: on a 2-layer transformer that doubled the optimizer's time. XLA on the CPU
fuses the elementwise passes well (2.3× faster than TensorFlow's kernels on a 2M-weight
table) but its reductions are slow (2.2× slower than TensorFlow's), so only the
elementwise writes are compiled, and the sums of squares use TensorFlow's one-pass
`L2Loss` kernel (2.5× faster than Square then Sum).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
from keras import ops

from blogml import keras_adapter

# Below this many elements a weight's writes stay TensorFlow kernels: XLA:CPU runs a small
# loop on one thread (about 3 ns an element at 65k elements against TensorFlow's 0.5 ns),
# and parallelises only larger ones (at 262k elements it is already 13 % faster).
FUSE_FROM_ELEMENTS = 2**18


def fused(writes: Sequence[tuple[Callable[[], object], int]]) -> None:
    """Run each `(write, elements)`: elementwise ops ending in variable assignments, over a
    weight of that many elements.

    In a TensorFlow graph the writes over large weights are compiled with XLA, as one
    cluster; eagerly (nothing to fuse a call at a time), on the other backends and for small
    weights each is called as it is.
    """
    tracing = keras_adapter.tracing_a_tensorflow_step()
    in_cluster = [tracing and elements >= FUSE_FROM_ELEMENTS for _, elements in writes]
    large = [write for (write, _), clustered in zip(writes, in_cluster) if clustered]
    if large:
        import tensorflow as tf

        def cluster() -> None:
            for write in large:
                write()

        tf.function(cluster, jit_compile=True, autograph=False)()
    for (write, _), clustered in zip(writes, in_cluster):
        if not clustered:
            write()


def read(variable):
    """The variable's value as a tensor, read once: on TensorFlow each use of a variable
    in a graph is a read op of its own (a kernel launch for a small weight)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.convert_to_tensor(variable.value)
    return variable.value


def half_sum_of_squares(x, rows=None):
    """½ Σ x², over the rows where `rows` holds if a row mask is given (as `lazy.touched_rows`
    makes: shape (n, 1, ...), or x's own shape for a vector).

    Half, because that is what TensorFlow's one-pass `L2Loss` kernel computes; the trust
    ratio takes a quotient of two of these, where halving (exact in binary) cancels.
    """
    if rows is not None:
        if len(x.shape) < 2:
            total = ops.sum(ops.where(rows, ops.square(x), ops.zeros((), x.dtype)))
        else:
            per_row = ops.sum(ops.square(x), axis=tuple(range(1, len(x.shape))))
            total = ops.sum(ops.where(ops.reshape(rows, (-1,)), per_row,
                                      ops.zeros((), x.dtype)))
        return total * 0.5
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.nn.l2_loss(x)
    return ops.sum(ops.square(x)) * 0.5
