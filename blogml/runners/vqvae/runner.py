"""`task: vqvae`: train the seed's VQ-VAE on an HDF5 image cache, with codebook health."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
from PIL import Image
from tqdm import tqdm

from blogml.data.batches import Batch
from blogml.data.celeba import IMAGE_SUFFIXES, square_image
from blogml.data.hdf5 import HDF5Images, to_unit_range
from blogml.errors import BlogmlError
from blogml.models.vqvae import VQVAE
from blogml.runners.base import BaseRunner
from blogml.runners.console import interactive
from blogml.runners.images import save_grid, to_uint8
from blogml.runners.loop_actions import LoopAction
from blogml.runners.preflight import require_data

log = logging.getLogger("blogml")
INTERPOLATION_STEPS = 8


class VQVAERunner(BaseRunner):
    splits = ("val", "test", "train")

    def build_data(self) -> None:
        require_data(self.config, self.source)  # `blogml train` checked it, eval did not
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
        return {}  # the loss is the model's own compute_loss (README: task: vqvae)

    def evaluate(self, split: str) -> dict[str, float]:
        """Means over every image, and the code usage of the whole split's histogram (a
        mean of per-batch perplexities would understate how many codes are in use): the
        compiled metrics accumulated over the split, in the run's distribution."""
        return self.distribution.evaluate(self.model, self.eval_batches(split))

    def predict(self, input_path: Path, output_path: Path) -> Path:
        """Reconstructions of a folder of images (cropped and resized as the training cache
        was; a file that is no readable image is skipped and listed) or of an HDF5 cache's
        test split: one PNG per image, named after its source (by index when the cache has
        no names), and overview.png (originals over reconstructions, the first 16). Every
        input is read and reconstructed before anything is written."""
        if output_path.exists() and not output_path.is_dir():
            raise BlogmlError(f"--output {output_path}: is a file, but vqvae writes a folder "
                              "of PNGs; give a folder (new or existing)")
        names, images = self._predict_inputs(input_path)
        reconstructions = []
        with self.evaluation_weights(), tqdm(total=len(images), desc="reconstructing",
                                             unit="image", disable=not interactive(),
                                             leave=False, file=sys.stderr) as bar:
            for start in range(0, len(images), 64):
                batch = to_unit_range(images[start:start + 64])
                out = self.model(batch, training=False)
                reconstructions.append(to_uint8(keras.ops.convert_to_numpy(
                    out["reconstruction"])))
                bar.update(len(batch))
        reconstructed = np.concatenate(reconstructions)
        output_path.mkdir(parents=True, exist_ok=True)
        for name, image in zip(names, reconstructed):
            Image.fromarray(image).save(output_path / f"{Path(name).stem}.png")
        save_grid([images[:16], reconstructed[:16]], output_path / "overview.png")
        return output_path

    def _predict_inputs(self, input_path: Path) -> tuple[list[str], np.ndarray]:
        """(names, uint8 images) to reconstruct; BlogmlError naming the input when none can be."""
        if input_path.is_file():
            return self._cache_inputs(input_path)
        return self._folder_inputs(input_path)

    def _cache_inputs(self, path: Path) -> tuple[list[str], np.ndarray]:
        """The test split of an HDF5 cache. A cache of another image size is refused, not
        resized: its images were resampled once already, a second pass would blur them, and
        the reconstructions would not show what the model does; the image folder gives the
        model what training gave it."""
        size = self.image_size
        try:
            with h5py.File(path, "r") as handle:
                test = handle.get("test")
                if not isinstance(test, h5py.Dataset):
                    raise BlogmlError(f"{path}: has no test split to reconstruct")
                if test.shape[1:] != (size, size, 3) or test.dtype != np.uint8:
                    raise BlogmlError(
                        f"{path}: its test images have shape {tuple(test.shape[1:])} "
                        f"({test.dtype}), the model of {self.run_dir} takes {size}x{size} RGB "
                        f"uint8 images, shape ({size}, {size}, 3); predict on the image "
                        "folder instead (it is cropped and resized as the training cache was)")
                if not len(test):
                    raise BlogmlError(f"{path}: its test split is empty; nothing to reconstruct")
                images = test[()]
                names = handle.get("names/test")
                names = [] if names is None else names[()]
        except OSError as error:  # h5py: not an HDF5 file, or one cut short
            raise BlogmlError(f"{path}: not an HDF5 file, or one cut short ({error}); --input "
                              "takes a folder of images or an HDF5 cache from `blogml data "
                              "prepare celeba`") from None
        if len(names) != len(images):
            log.warning("%s: names/test is missing or does not match its %d test images; the "
                        "reconstructions are named by index", path, len(images))
            width = len(str(len(images) - 1))
            return [f"{i:0{width}d}" for i in range(len(images))], images
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names], images

    def _folder_inputs(self, folder: Path) -> tuple[list[str], np.ndarray]:
        """Every .jpg/.jpeg/.png of a folder, cropped and resized as the training cache was.
        A file that is no readable image is skipped and listed: one bad file must not cost
        the rest of the folder."""
        with h5py.File(self.config["data"]["path"], "r") as handle:
            crop = int(handle.attrs.get("crop", 0))
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise BlogmlError(f"{folder}: no .jpg/.jpeg/.png images to reconstruct")
        names, images, skipped = [], [], []
        for path in files:
            try:
                images.append(self._square(path, crop))
                names.append(path.name)
            # Pillow reports a bad file with many exception types (OSError, SyntaxError,
            # struct.error, ...): any of them means this one image is unusable.
            except Exception as error:
                skipped.append(f"{path}: skipped, not a readable image "
                               f"({str(error) or type(error).__name__})")
        if not images:
            raise BlogmlError(f"{folder}: no readable image to reconstruct:\n"
                              + "\n".join(skipped))
        for line in skipped:
            log.warning(line)
        return names, np.stack(images)

    def _square(self, path: Path, crop: int) -> np.ndarray:
        try:
            return square_image(path, crop, self.image_size)
        except ValueError:  # smaller than the training crop: take its largest square
            return square_image(path, 0, self.image_size)

    def task_actions(self) -> list[LoopAction]:
        return [self.sample_action(self.draw_samples)]

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
