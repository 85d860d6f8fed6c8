"""VQ-VAE input pipeline: images/s of shuffled 64x64 batches streamed from an HDF5 cache.

Synthesizes 4096 demo faces (178x218 JPGs) in a temporary folder, converts them with
`blogml data prepare celeba` (64x64), then times `HDF5Images.batches` exactly as training
consumes it: random batches of 64, scaled to [-1, 1], prefetched in the background thread.
The file was just written, so it is read from the page cache (as a cache that fits in RAM
is after the first epoch). Prints one JSON line.

`pipeline_images_per_second` is the half a training benchmark compares with the model's
training images/s: the pipeline must be the faster of the two, or training waits for data.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from blogml.data.celeba import prepare_celeba, synth_celeba
from blogml.data.hdf5 import HDF5Images, to_unit_range

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


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        synth_celeba(Path(folder) / "celeba", count=NUM_IMAGES, seed=0)
        cache = Path(folder) / f"celeba{SIZE}.h5"
        prepare_celeba(Path(folder) / "celeba", cache, size=SIZE)
        rate = pipeline_images_per_second(cache, BATCH_SIZE, SECONDS)
    print(json.dumps({
        "benchmark": "vqvae_input",
        "images_per_sec": round(rate, 1),
        "batch_size": BATCH_SIZE,
        "size": SIZE,
        "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
