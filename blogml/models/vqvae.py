"""VQ-VAE (van den Oord et al. 2017) as in the seed post "VQ-VAE的简明介绍" (README: task: vqvae).

encoder: two 4×4 stride-2 convolutions with BN/ReLU, then residual blocks (BN over the
global batch under tf.distribute, see `batch_norm`);
quantiser: nearest code of a learned codebook, straight-through gradient;
decoder: the encoder mirrored with transposed convolutions, tanh output in [−1, 1].

Loss = mse(x, x̂) + mse(sg[z], e) + β·mse(z, sg[e]); with the EMA codebook the middle
term is dropped (the codebook follows the encoder outputs by moving averages instead).
Everything is `keras`/`keras.ops`, and the model customises only `compute_loss` and
`compute_metrics` (public hooks), so it trains under `train_on_batch` on every backend.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from blogml import replicas
from blogml.models.batch_norm import GlobalBatchNormalization
from blogml.models.quantizer import VectorQuantizer, straight_through


def residual_block(x, channels: int, name: str):
    """ReLU, 3×3 conv, BN, ReLU, 1×1 conv, added to the input."""
    h = keras.layers.ReLU(name=f"{name}_relu1")(x)
    h = keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv3")(h)
    h = GlobalBatchNormalization(name=f"{name}_bn")(h)
    h = keras.layers.ReLU(name=f"{name}_relu2")(h)
    h = keras.layers.Conv2D(channels, 1, name=f"{name}_conv1")(h)
    return keras.layers.Add(name=f"{name}_add")([x, h])


def default_residual_blocks(image_size: int) -> int:
    """log2(size) − 4, as in the seed: 2 blocks at 64×64, 3 at 128×128."""
    return max(int(math.log2(image_size)) - 4, 0)


def build_encoder(image_size: int, z_dim: int, residual_blocks: int) -> keras.Model:
    images = keras.Input((image_size, image_size, 3), name="images")
    h = images
    for i in range(2):
        h = keras.layers.Conv2D(z_dim, 4, strides=2, padding="same", name=f"down{i}")(h)
        h = GlobalBatchNormalization(name=f"down{i}_bn")(h)
        h = keras.layers.ReLU(name=f"down{i}_relu")(h)
    for i in range(residual_blocks):
        h = residual_block(h, z_dim, f"res{i}")
    return keras.Model(images, h, name="encoder")


def build_decoder(grid_size: int, z_dim: int, residual_blocks: int) -> keras.Model:
    codes = keras.Input((grid_size, grid_size, z_dim), name="quantized")
    h = codes
    for i in range(residual_blocks):
        h = residual_block(h, z_dim, f"res{i}")
    h = keras.layers.Conv2DTranspose(z_dim, 4, strides=2, padding="same", name="up0")(h)
    h = GlobalBatchNormalization(name="up0_bn")(h)
    h = keras.layers.ReLU(name="up0_relu")(h)
    h = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same", name="up1")(h)
    # float32 images under mixed precision: the reconstruction loss and PSNR read them.
    images = keras.layers.Activation("tanh", dtype="float32", name="tanh")(h)
    return keras.Model(codes, images, name="decoder")


def psnr(images, reconstructions):
    """Per-image PSNR in dB on [0, 1] pixels (inputs are in [−1, 1])."""
    mse = ops.mean(ops.square((reconstructions - images) / 2.0), axis=(1, 2, 3))
    return 10.0 * ops.log(1.0 / ops.maximum(mse, 1e-10)) / math.log(10.0)


def code_counts(codes, num_codes: int):
    """How often each code occurs in `codes`, summed over tf.distribute replicas (the global
    batch's: these statistics do not average over slices)."""
    [counts] = replicas.all_sum([ops.sum(ops.one_hot(ops.reshape(codes, (-1,)), num_codes),
                                         axis=0)])
    return counts


def usage_of_counts(counts):
    """(perplexity, fraction of codes used) of a code histogram.

    Perplexity exp(−Σ p log p): 1 when one code is used for everything, `num_codes` when
    all are used equally.
    """
    p = counts / ops.maximum(ops.sum(counts), 1.0)
    entropy = -ops.sum(ops.where(p > 0, p * ops.log(ops.maximum(p, 1e-12)), 0.0))
    return ops.exp(entropy), ops.mean(ops.cast(counts > 0, "float32"))


def code_statistics(codes, num_codes: int):
    """(perplexity, fraction of codes used) of a batch of code indices."""
    return usage_of_counts(code_counts(codes, num_codes))


class CodeUsage(keras.metrics.Metric):
    """Perplexity and fraction of codes used (`usage_of_counts`) of the histogram of every
    code it was given. Neither averages over batches (the mean of per-batch perplexities
    understates how many codes a split uses), so the histogram itself is the state:
    `train_on_batch` resets it every step (a batch's figures), an evaluation once per split
    (the split's)."""

    def __init__(self, num_codes: int, name: str = "code_usage", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.num_codes = num_codes
        self.counts = self.add_variable(shape=(num_codes,), initializer="zeros", name="counts")

    def update_state(self, codes) -> None:
        self.counts.assign_add(ops.cast(code_counts(codes, self.num_codes), self.counts.dtype))

    def result(self) -> dict:
        perplexity, used = usage_of_counts(self.counts.value)
        return {"perplexity": perplexity, "codes_used": used}

    def get_config(self) -> dict:
        return {**super().get_config(), "num_codes": self.num_codes}


class VQVAE(keras.Model):
    """Autoencoder through a codebook. `call` returns reconstruction, z, e and codes."""

    def __init__(self, image_size: int = 64, z_dim: int = 128, num_codes: int = 64,
                 beta: float = 0.25, residual_blocks: int | None = None,
                 codebook_update: str = "loss", decay: float = 0.99, epsilon: float = 1e-5,
                 restart_dead_after: int | None = None, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        blocks = default_residual_blocks(image_size) if residual_blocks is None else residual_blocks
        self.image_size, self.num_codes, self.beta = image_size, num_codes, beta
        self.grid_size = image_size // 4
        self.encoder = build_encoder(image_size, z_dim, blocks)
        # float32 whatever the dtype policy: nearest-code distances and the EMA statistics
        # lose codes to rounding in float16.
        self.quantizer = VectorQuantizer(num_codes, z_dim, update=codebook_update, decay=decay,
                                         epsilon=epsilon, restart_dead_after=restart_dead_after,
                                         seed=seed, dtype="float32", name="quantizer")
        self.decoder = build_decoder(self.grid_size, z_dim, blocks)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in
                         ("mse", "psnr", "commitment")}
        self.code_usage = CodeUsage(num_codes)
        self.build((None, image_size, image_size, 3))

    def build(self, input_shape) -> None:
        self.quantizer.build((None, self.grid_size, self.grid_size,
                              self.encoder.output.shape[-1]))
        super().build(input_shape)

    def call(self, images, training: bool = False) -> dict:
        # z in float32 like the quantiser's e, so the straight-through sum and the loss
        # terms mix no dtypes under mixed precision; the decoder casts back to its own.
        z = ops.cast(self.encoder(images, training=training), "float32")
        e, codes = self.quantizer(z, training=training)
        # The decoder sees e; the encoder receives the decoder's gradient unchanged.
        reconstruction = self.decoder(straight_through(z, e), training=training)
        return {"reconstruction": reconstruction, "z": z, "e": e, "codes": codes}

    def decode_codes(self, codes):
        """Images from code grids [batch, grid, grid] (for the prior's samples)."""
        return self.decoder(self.quantizer.lookup(codes), training=False)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # ops.subtract, not `-`: x may be a NumPy array, which torch tensors do not mix with.
        reconstruction = ops.mean(ops.square(ops.subtract(y_pred["reconstruction"], x)))
        z, e = y_pred["z"], y_pred["e"]
        commitment = ops.mean(ops.square(z - ops.stop_gradient(e)))
        loss = reconstruction + self.beta * commitment
        if self.quantizer.update == "loss":
            loss = loss + ops.mean(ops.square(ops.stop_gradient(z) - e))
        return replicas.loss_share(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None) -> dict:
        """Means per image (weighted by the batch's size, so that an evaluation over
        batches of different sizes gives the split's mean) and the split's code usage."""
        super().compute_metrics(x, y, y_pred, sample_weight)
        reconstruction, images = y_pred["reconstruction"], ops.shape(x)[0]
        self.trackers["mse"].update_state(ops.mean(ops.square((reconstruction - x) / 2.0)),
                                          sample_weight=images)
        self.trackers["psnr"].update_state(ops.mean(psnr(x, reconstruction)),
                                           sample_weight=images)
        self.trackers["commitment"].update_state(
            ops.mean(ops.square(y_pred["z"] - y_pred["e"])), sample_weight=images)
        self.code_usage.update_state(y_pred["codes"])
        return self.get_metrics_result()
