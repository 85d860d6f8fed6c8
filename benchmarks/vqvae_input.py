"""VQ-VAE input pipeline vs training: HDF5 pipeline images/s ÷ training images/s (target ≥ 5).

Synthesizes 4096 demo faces (178x218 JPGs) in a temporary folder, converts them with
`blogml data prepare celeba` (64x64), then times `HDF5Images.batches` exactly as training
consumes it: random batches of 64, scaled to [-1, 1], prefetched in the background thread.
The file was just written, so it is read from the page cache (as a cache that fits in RAM
is after the first epoch). Prints one JSON line.

Beside it, `training_images_per_second` times the seed's 64x64 model (z_dim 128, 64 codes,
Adam) training on an in-memory batch: the pipeline must be the faster of the two by a wide
margin, or training waits for data.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from blogml.data.celeba import prepare_celeba, synth_celeba  # noqa: E402
from blogml.data.hdf5 import HDF5Images, to_unit_range  # noqa: E402

NUM_IMAGES, SIZE, BATCH_SIZE, SECONDS = 4096, 64, 64, 5.0


def pipeline_images_per_second(path: str | Path, batch_size: int, seconds: float) -> float:
    """Training images/s from the train split of `path` for about `seconds` (shuffled
    batches in [-1, 1], as the VQ-VAE runner reads them), after one warm-up batch."""
    images = HDF5Images(path, "train", batch_size, seed=0, transform=to_unit_range)
    stream = images.batches()
    next(stream)  # opens the file and starts the prefetch thread
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        count += len(next(stream))
    stream.close()
    return count / elapsed


def training_images_per_second(batch_size: int, seconds: float) -> float:
    """Images/s of the seed's 64x64 VQ-VAE training on one in-memory batch (no input cost)."""
    import keras
    import numpy as np

    from blogml.models.vqvae import VQVAE

    keras.utils.set_random_seed(0)
    model = VQVAE(image_size=SIZE, z_dim=128, num_codes=64)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    batch = np.random.default_rng(0).uniform(-1, 1, (batch_size, SIZE, SIZE, 3)).astype("float32")
    for _ in range(3):
        model.train_on_batch(batch)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        model.train_on_batch(batch)
        count += batch_size
    return count / elapsed


def make_demo_cache(folder: Path, count: int = NUM_IMAGES) -> Path:
    """Synthesized faces in the CelebA layout, prepared to a 64x64 HDF5 cache."""
    synth_celeba(folder / "celeba", count=count, seed=0)
    cache = folder / f"celeba{SIZE}.h5"
    prepare_celeba(folder / "celeba", cache, size=SIZE)
    return cache


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        pipeline = pipeline_images_per_second(make_demo_cache(Path(folder)), BATCH_SIZE,
                                              SECONDS)
    training = training_images_per_second(BATCH_SIZE, SECONDS)
    print(json.dumps({
        "benchmark": "vqvae_input",
        "pipeline_images_per_sec": round(pipeline, 1),
        "training_images_per_sec": round(training, 1),
        "ratio": round(pipeline / training, 1),
        "target_ratio": 5.0,
        "meets_target": pipeline / training >= 5.0,
        "batch_size": BATCH_SIZE,
        "size": SIZE,
        "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
