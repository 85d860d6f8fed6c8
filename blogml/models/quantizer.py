"""Vector quantisation with a learned codebook, by loss or by moving averages.

`update="loss"`: the codebook is a trainable weight, pulled towards the encoder outputs by
the codebook loss mse(sg[z], e) (the seed's choice).

`update="ema"` (VQ-VAE appendix, van den Oord et al. 2017): the codebook is a non-trainable
state updated in the training forward pass, like BatchNorm's statistics:

    N_i ← γ·N_i + (1−γ)·n_i                 n_i: batch vectors assigned to code i
    m_i ← γ·m_i + (1−γ)·Σ_{z→i} z
    Ñ_i = (N_i + ε) / (Σ_j N_j + K·ε) · Σ_j N_j     (Laplace smoothing)
    e_i = m_i / Ñ_i

N starts at 1 and m at the initial codebook, so an unused code keeps its vector instead of
drifting to zero or to infinity. `restart_dead_after=N` (EMA only) re-initialises every
code that no batch has used for N training steps with a random encoder output of the
current batch, the usual cure for codebook collapse.
"""

from __future__ import annotations

import keras
from keras import ops

from blogml import replicas


def straight_through(z, e):
    """e in the forward pass, identity gradient to z in the backward pass: z + sg(e − z)."""
    return ops.add(z, ops.stop_gradient(ops.subtract(e, z)))  # z may be a NumPy array


class VectorQuantizer(keras.layers.Layer):
    def __init__(self, num_codes: int, dim: int, update: str = "loss", decay: float = 0.99,
                 epsilon: float = 1e-5, restart_dead_after: int | None = None, seed: int = 0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if update not in ("loss", "ema"):
            raise ValueError(f"update must be 'loss' or 'ema', got {update!r}")
        if restart_dead_after is not None and update != "ema":
            raise ValueError("restart_dead_after needs update='ema'")
        self.num_codes, self.dim, self.update = num_codes, dim, update
        self.decay, self.epsilon, self.restart_dead_after = decay, epsilon, restart_dead_after
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape) -> None:
        # The same seeded initializer gives the EMA sums the same start as the codebook.
        initializer = keras.initializers.RandomUniform(-1.0, 1.0, seed=self.seed)
        trainable = self.update == "loss"
        self.codebook = self.add_weight(shape=(self.num_codes, self.dim),
                                        initializer=initializer, trainable=trainable,
                                        name="codebook")
        if self.update == "ema":
            self.cluster_size = self.add_weight(shape=(self.num_codes,), initializer="ones",
                                                trainable=False, name="cluster_size")
            self.code_sum = self.add_weight(shape=(self.num_codes, self.dim),
                                            initializer=initializer, trainable=False,
                                            name="code_sum")
        if self.restart_dead_after is not None:
            self.steps_unused = self.add_weight(shape=(self.num_codes,), initializer="zeros",
                                                dtype="int32", trainable=False,
                                                name="steps_unused")

    def nearest(self, flat):
        """Index of the nearest code (Euclidean) of each row of `flat` [n, dim]."""
        codebook = ops.convert_to_tensor(self.codebook)
        distances = (ops.sum(ops.square(flat), axis=1, keepdims=True)
                     - 2.0 * ops.matmul(flat, ops.transpose(codebook))
                     + ops.sum(ops.square(codebook), axis=1)[None, :])
        return ops.argmin(distances, axis=1)

    def lookup(self, codes):
        return ops.take(self.codebook, codes, axis=0)

    def call(self, z, training: bool = False):
        """(e, codes): the nearest codebook vectors, shaped like `z`, and their indices."""
        flat = ops.reshape(z, (-1, self.dim))
        codes = self.nearest(flat)
        if training and self.update == "ema":
            self._ema_update(ops.stop_gradient(flat), codes)
        e = ops.reshape(self.lookup(codes), ops.shape(z))
        return e, ops.reshape(codes, ops.shape(z)[:-1])

    def _ema_update(self, flat, codes) -> None:
        assigned = ops.one_hot(codes, self.num_codes, dtype=flat.dtype)  # [n, K]
        # Statistics of the global batch: under tf.distribute each replica holds a slice.
        counts, sums = replicas.all_sum([ops.sum(assigned, axis=0),
                                         ops.matmul(ops.transpose(assigned), flat)])
        cluster_size = self.decay * self.cluster_size + (1.0 - self.decay) * counts
        code_sum = self.decay * self.code_sum + (1.0 - self.decay) * sums
        if self.restart_dead_after is not None:
            steps_unused = ops.where(counts > 0, 0, self.steps_unused + 1)
            dead = steps_unused >= self.restart_dead_after
            fresh = self._random_rows(flat)
            cluster_size = ops.where(dead, 1.0, cluster_size)
            code_sum = ops.where(dead[:, None], fresh, code_sum)
            self.steps_unused.assign(ops.where(dead, 0, steps_unused))
        total = ops.sum(cluster_size)
        smoothed = (cluster_size + self.epsilon) / (total + self.num_codes * self.epsilon) * total
        self.cluster_size.assign(cluster_size)
        self.code_sum.assign(code_sum)
        self.codebook.assign(code_sum / smoothed[:, None])

    def _random_rows(self, flat):
        """One random row of the global batch per code. Under tf.distribute the rows are
        numbered across the replicas' slices, so the picks, drawn alike on every replica, are
        the ones one device would draw; each row comes from the replica that holds it."""
        local = ops.shape(flat)[0]
        picks = keras.random.randint((self.num_codes,), 0, local * replicas.count(),
                                     seed=self.seed_generator)
        if replicas.count() == 1:
            return ops.take(flat, picks, axis=0)
        start = replicas.index() * local
        mine = ops.logical_and(picks >= start, picks < start + local)
        rows = ops.take(flat, ops.where(mine, picks - start, 0), axis=0)
        return replicas.all_sum([ops.where(mine[:, None], rows, ops.zeros_like(rows))])[0]
