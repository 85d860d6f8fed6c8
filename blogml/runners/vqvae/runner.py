"""`task: vqvae`: train the seed's VQ-VAE on an HDF5 image cache, with codebook health."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
from PIL import Image

from blogml.data.batches import Batch
from blogml.data.celeba import IMAGE_SUFFIXES, square_image
from blogml.data.hdf5 import HDF5Images, to_unit_range
from blogml.errors import BlogmlError
from blogml.models.vqvae import VQVAE, psnr
from blogml.runners.base import BaseRunner
from blogml.runners.images import save_grid, to_uint8

INTERPOLATION_STEPS = 8


class VQVAERunner(BaseRunner):
    splits = ("val", "test", "train")

    def build_data(self) -> None:
        data = self.config["data"]
        self.images = HDF5Images(data["path"], data["train_split"],
                                 self.train_config["batch_size"], self.config["seed"],
                                 transform=to_unit_range)
        self.image_size = self.images.dataset(data["train_split"]).shape[1]
        self.batches_per_pass = self.images.batches_per_pass

    def split_name(self, split: str) -> str:
        """The HDF5 split behind a `--split` name (val and train are configurable)."""
        data = self.config["data"]
        return {"val": data["val_split"], "train": data["train_split"]}.get(split, split)

    def train_batches(self, start_step: int) -> Iterator[Batch]:
        return ((images,) for images in self.images.batches(start_step))

    def eval_batches(self, split: str) -> Iterator[Batch]:
        batches = self.images.eval_batches(self.split_name(split),
                                           max(self.train_config["batch_size"], 64))
        return ((images,) for images in batches)

    def build_model(self) -> keras.Model:
        model, codebook = self.config["model"], self.config["model"]["codebook"]
        return VQVAE(image_size=self.image_size, z_dim=model["z_dim"],
                     num_codes=model["num_codes"], beta=model["beta"],
                     residual_blocks=model["residual_blocks"],
                     codebook_update=codebook["update"], decay=codebook["decay"],
                     epsilon=codebook["epsilon"],
                     restart_dead_after=codebook["restart_dead_after"], seed=self.config["seed"])

    def compile_args(self) -> dict[str, Any]:
        return {}  # the loss is the model's own compute_loss (MISSION §4)

    def evaluate(self, split: str) -> dict[str, float]:
        """Means over every image, and codebook statistics of the whole split's histogram
        (a mean of per-batch perplexities would understate how many codes are in use)."""
        model: VQVAE = self.model
        totals = {"loss": 0.0, "mse": 0.0, "psnr": 0.0, "commitment": 0.0}
        histogram = np.zeros(model.num_codes)
        count = 0
        for (images,) in self.eval_batches(split):
            out = model(images, training=False)
            size = len(images)
            totals["loss"] += float(model.compute_loss(images, None, out, training=False)) * size
            reconstruction = keras.ops.convert_to_numpy(out["reconstruction"])
            totals["mse"] += float(np.mean(((reconstruction - images) / 2.0) ** 2)) * size
            totals["psnr"] += float(np.sum(keras.ops.convert_to_numpy(psnr(images,
                                                                           reconstruction))))
            z, e = (keras.ops.convert_to_numpy(out[k]) for k in ("z", "e"))
            totals["commitment"] += float(np.mean((z - e) ** 2)) * size
            codes = keras.ops.convert_to_numpy(out["codes"]).reshape(-1)
            histogram += np.bincount(codes, minlength=model.num_codes)
            count += size
        metrics = {name: total / count for name, total in totals.items()}
        p = histogram / histogram.sum()
        nonzero = p[p > 0]
        metrics["perplexity"] = float(np.exp(-np.sum(nonzero * np.log(nonzero))))
        metrics["codes_used"] = float(np.mean(histogram > 0))
        return metrics

    def predict(self, input_path: Path, output_path: Path) -> Path:
        """Reconstructions of a folder of images (cropped and resized as the training cache
        was) or of an HDF5 cache's test split: one PNG per image, named after its source,
        and overview.png (originals over reconstructions, the first 16)."""
        names, images = self._predict_inputs(input_path)
        output_path.mkdir(parents=True, exist_ok=True)
        reconstructions = []
        with self.evaluation_weights():
            for start in range(0, len(images), 64):
                batch = to_unit_range(images[start:start + 64])
                out = self.model(batch, training=False)
                reconstructions.append(to_uint8(keras.ops.convert_to_numpy(
                    out["reconstruction"])))
        reconstructed = np.concatenate(reconstructions)
        for name, image in zip(names, reconstructed):
            Image.fromarray(image).save(output_path / f"{Path(name).stem}.png")
        save_grid([images[:16], reconstructed[:16]], output_path / "overview.png")
        return output_path

    def _predict_inputs(self, input_path: Path) -> tuple[list[str], np.ndarray]:
        if input_path.is_file():
            with h5py.File(input_path, "r") as handle:
                if "test" not in handle:
                    raise BlogmlError(f"{input_path}: has no test split to reconstruct")
                names = [n.decode() if isinstance(n, bytes) else str(n)
                         for n in handle["names"]["test"][()]]
                return names, handle["test"][()]
        with h5py.File(self.config["data"]["path"], "r") as handle:
            crop = int(handle.attrs.get("crop", 0))
        files = sorted(p for p in input_path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise BlogmlError(f"{input_path}: no .jpg/.jpeg/.png images to reconstruct")
        images = []
        for path in files:
            try:
                images.append(square_image(path, crop, self.image_size))
            except ValueError:  # smaller than the training crop: take its largest square
                images.append(square_image(path, 0, self.image_size))
        return [p.name for p in files], np.stack(images)

    def draw_samples(self, step: int) -> None:
        """samples/reconstructions_<step>.png (originals over reconstructions) and
        samples/interpolation_<step>.png (decoded straight lines between encodings)."""
        count = self.train_config["sample_count"]
        images = to_unit_range(self.images.dataset(self.split_name("val"))[:count])
        out = self.model(images, training=False)
        reconstruction = keras.ops.convert_to_numpy(out["reconstruction"])
        save_grid([to_uint8(images), to_uint8(reconstruction)],
                  self.run_dir.samples / f"reconstructions_{step:07d}.png")
        z = keras.ops.convert_to_numpy(out["z"])
        rows = []
        for a, b in zip(range(0, count - 1, 2), range(1, count, 2)):
            weights = np.linspace(0.0, 1.0, INTERPOLATION_STEPS)[:, None, None, None]
            path = (1 - weights) * z[a] + weights * z[b]
            e, _ = self.model.quantizer(path, training=False)
            decoded = keras.ops.convert_to_numpy(self.model.decoder(e, training=False))
            rows.append(np.concatenate([to_uint8(images[a:a + 1]), to_uint8(decoded),
                                        to_uint8(images[b:b + 1])]))
        if rows:
            save_grid(rows, self.run_dir.samples / f"interpolation_{step:07d}.png")
