"""The VQ-VAE's quantiser and loss against NumPy and hand-worked values."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from blogml.models.quantizer import VectorQuantizer, straight_through
from blogml.models.vqvae import VQVAE, CodeUsage, code_statistics, psnr

pytestmark = [pytest.mark.backend_neutral, pytest.mark.models]


def gradient(f, x: np.ndarray) -> np.ndarray:
    """d f(x) / dx on the current backend (the test needs a real autodiff)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensor = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            value = f(tensor)
        return tape.gradient(value, tensor).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(f)(x))
    import torch

    tensor = torch.tensor(x, requires_grad=True)
    f(tensor).backward()
    return tensor.grad.numpy()


def quantizer(update="loss", **kwargs) -> VectorQuantizer:
    layer = VectorQuantizer(num_codes=6, dim=3, update=update, seed=1, **kwargs)
    layer.build((None, 4, 4, 3))
    return layer


def test_codes_are_the_numpy_nearest_neighbours():
    layer = quantizer()
    z = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
    e, codes = layer(z)
    codebook = keras.ops.convert_to_numpy(layer.codebook)
    flat = z.reshape(-1, 3)
    expected = np.argmin(((flat[:, None, :] - codebook[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(codes).reshape(-1), expected)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(e).reshape(-1, 3), codebook[expected])


def test_straight_through_gradient_is_the_identity():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    weights = rng.normal(size=z.shape).astype("float32")
    layer = quantizer()

    def decoder_input(z_tensor):
        e, _ = layer(z_tensor)
        return ops.sum(ops.convert_to_tensor(weights) * straight_through(z_tensor, e))

    # d(decoder input)/d(encoder output) = identity, so the gradient is the weights.
    np.testing.assert_allclose(gradient(decoder_input, z), weights, atol=1e-6)
    e, _ = layer(z)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(straight_through(z, e)),
                               keras.ops.convert_to_numpy(e), atol=1e-6)  # forward: e


def test_ema_codebook_follows_its_formula():
    decay, epsilon = 0.9, 1e-5
    layer = quantizer("ema", decay=decay, epsilon=epsilon)
    sizes = np.ones(6)
    sums = keras.ops.convert_to_numpy(layer.codebook).astype(np.float64)
    rng = np.random.default_rng(2)
    for _ in range(3):
        z = rng.normal(size=(2, 4, 4, 3)).astype("float32")
        codebook = keras.ops.convert_to_numpy(layer.codebook)
        flat = z.reshape(-1, 3)
        codes = np.argmin(((flat[:, None, :] - codebook[None]) ** 2).sum(-1), axis=1)
        onehot = np.eye(6)[codes]
        sizes = decay * sizes + (1 - decay) * onehot.sum(0)
        sums = decay * sums + (1 - decay) * onehot.T @ flat
        total = sizes.sum()
        smoothed = (sizes + epsilon) / (total + 6 * epsilon) * total
        layer(z, training=True)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.codebook),
                                   sums / smoothed[:, None], atol=1e-5)
    unused = np.setdiff1d(np.arange(6), codes)
    assert np.all(keras.ops.convert_to_numpy(layer.cluster_size)[unused] < 1.0)


def test_a_dead_code_is_restarted_from_encoder_outputs_after_n_steps():
    layer = quantizer("ema", restart_dead_after=3)
    codebook = keras.ops.convert_to_numpy(layer.codebook)
    codebook[5] = 100.0  # far from every input: code 5 is never chosen
    layer.codebook.assign(codebook)
    layer.code_sum.assign(codebook)
    rng = np.random.default_rng(3)
    batches = [rng.normal(size=(1, 4, 4, 3)).astype("float32") * 0.1 for _ in range(3)]
    for z in batches[:2]:
        layer(z, training=True)
    assert keras.ops.convert_to_numpy(layer.steps_unused)[5] == 2
    assert keras.ops.convert_to_numpy(layer.codebook)[5, 0] > 50  # still the far vector
    layer(batches[2], training=True)  # third unused step: restarted
    restarted = keras.ops.convert_to_numpy(layer.codebook)[5]
    candidates = batches[2].reshape(-1, 3)
    distances = np.abs(candidates - restarted).max(axis=1)
    assert distances.min() < 1e-4  # a (Laplace-smoothed) copy of one of this batch's vectors
    assert keras.ops.convert_to_numpy(layer.steps_unused)[5] == 0


def test_restart_without_ema_is_refused():
    with pytest.raises(ValueError, match="restart_dead_after needs update='ema'"):
        VectorQuantizer(8, 3, update="loss", restart_dead_after=5)


def test_loss_and_metrics_follow_their_definitions():
    model = VQVAE(image_size=16, z_dim=8, num_codes=4, beta=0.25, seed=0)
    x = np.random.default_rng(4).uniform(-1, 1, size=(2, 16, 16, 3)).astype("float32")
    out = model(x)
    xr, z, e = (keras.ops.convert_to_numpy(out[k]) for k in ("reconstruction", "z", "e"))
    expected = np.mean((xr - x) ** 2) + 0.25 * np.mean((z - e) ** 2) + np.mean((z - e) ** 2)
    loss = keras.ops.convert_to_numpy(ops.stop_gradient(model.compute_loss(x, None, out)))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    mse01 = ((xr - x) / 2) ** 2
    per_image = 10 * np.log10(1 / mse01.mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(psnr(x, xr)), per_image, rtol=1e-5)
    perplexity, used = code_statistics(np.array([[0, 0], [1, 2]]), 4)
    p = np.array([0.5, 0.25, 0.25])
    assert float(perplexity) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-6)
    assert float(used) == 0.75


def test_code_usage_is_of_the_whole_histogram_not_a_mean_over_batches():
    """Two batches using codes {0} and {1}: each alone has perplexity 1 and uses 1 code in
    4; together the histogram is [2, 2, 0, 0], perplexity 2, half the codes used."""
    usage = CodeUsage(4)
    usage.update_state(np.array([[0, 0]]))
    usage.update_state(np.array([[1, 1]]))
    result = {k: float(v) for k, v in usage.result().items()}
    assert result == pytest.approx({"perplexity": 2.0, "codes_used": 0.5})
    alone = [float(v) for v in code_statistics(np.array([[0, 0]]), 4)]
    assert alone == pytest.approx([1.0, 0.25])
    usage.reset_state()
    usage.update_state(np.array([[3]]))
    assert {k: float(v) for k, v in usage.result().items()} == pytest.approx(
        {"perplexity": 1.0, "codes_used": 0.25})
