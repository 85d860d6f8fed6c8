"""`task: vqvae_prior`: learn p(codes) of a trained VQ-VAE, then sample new images from it."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
from tqdm import tqdm

from blogml.data.batches import ArrayBatches, Batch, eval_batches
from blogml.models import prior
from blogml.models.prior import build_prior, sample, shift_right
from blogml.runners import checkpoint as ckpt
from blogml.runners.base import BaseRunner
from blogml.runners.building import build_runner, config_from_run_dir
from blogml.runners.console import interactive
from blogml.runners.images import save_grid, to_uint8
from blogml.runners.loop_actions import LoopAction
from blogml.runners.preflight import require_data
from blogml.runners.rundir import RunDir

log = logging.getLogger("blogml")


def bits_per_code(y_true, y_pred):
    """Cross-entropy of the next code in bits (a compiled metric)."""
    return prior.bits_per_code(keras.losses.sparse_categorical_crossentropy(
        y_true, y_pred, from_logits=True))


class VQVAEPriorRunner(BaseRunner):
    splits = ("val", "train")

    def build_data(self) -> None:
        require_data(self.config, self.source)  # the VQ-VAE run may have changed since
        data = self.config["data"]
        vqvae_dir = RunDir(data["vqvae_run"])
        self.vqvae = build_runner(config_from_run_dir(str(vqvae_dir)), vqvae_dir,
                                  fresh_session=False, distributed=False)
        checkpoint = ckpt.load_checkpoint(vqvae_dir.checkpoint(data["checkpoint"]))
        self.vqvae.restore(checkpoint)
        self.num_codes = self.vqvae.model.num_codes
        self.grid = self.vqvae.model.grid_size
        # The cache is this run's own: the VQ-VAE run may be read-only, or read by others.
        self.codes = self._encoded(self.run_dir.path / f"codes_{data['checkpoint']}.h5",
                                   checkpoint)
        flat = self.codes["train"]
        self._train = ArrayBatches([shift_right(flat, self.num_codes), flat.reshape(len(flat), -1)],
                                   self.train_config["batch_size"], self.config["seed"])
        self.batches_per_pass = self._train.batches_per_pass

    def _encoded(self, cache: Path, checkpoint: ckpt.Checkpoint) -> dict[str, np.ndarray]:
        """Code grids of the vqvae run's train and val splits, from the cache when it was
        made with this same checkpoint."""
        stamp = f"{checkpoint.path}@{checkpoint.meta['loop']['step']}"
        splits = ("train", "val")
        if cache.is_file():
            try:
                with h5py.File(cache, "r") as handle:
                    if handle.attrs.get("checkpoint") == stamp:
                        return {split: handle[split][()].astype(np.int32) for split in splits}
            except (OSError, KeyError) as error:  # cut short or overwritten: made again
                log.warning("%s: unreadable (%s); encoding the images again", cache, error)
        codes = {split: self._encode(split) for split in splits}
        tmp = cache.with_name(cache.name + ".partial")
        try:
            with h5py.File(tmp, "w") as handle:
                for split, grids in codes.items():
                    handle.create_dataset(split, data=grids.astype(np.int16),
                                          compression="gzip")
                handle.attrs["checkpoint"] = stamp
            tmp.replace(cache)
        finally:
            tmp.unlink(missing_ok=True)  # left only when the write failed
        return codes

    def _encode(self, split: str) -> np.ndarray:
        vqvae = self.vqvae
        grids = []
        with vqvae.evaluation_weights():
            for (images,) in tqdm(vqvae.eval_batches(split), desc=f"encoding {split}",
                                  unit="batch", disable=not interactive()):
                z = vqvae.model.encoder(images, training=False)
                _, codes = vqvae.model.quantizer(z, training=False)
                grids.append(keras.ops.convert_to_numpy(codes))
        return np.concatenate(grids).astype(np.int32)

    def train_batches(self, start_step: int) -> Iterator[Batch]:
        return self._train.batches(start_step)

    def eval_batches(self, split: str) -> Iterator[Batch]:
        grids = self.codes[split]
        return eval_batches([shift_right(grids, self.num_codes), grids.reshape(len(grids), -1)],
                            max(self.train_config["batch_size"], 64))

    def build_model(self) -> keras.Model:
        model = self.config["model"]
        return build_prior(self.num_codes, self.grid, model["hidden"], model["layers"],
                           model["heads"], model["dropout"])

    def compile_args(self) -> dict[str, Any]:
        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "metrics": [bits_per_code]}

    def task_actions(self) -> list[LoopAction]:
        return [self.sample_action(self.draw_samples)]

    def draw_samples(self, step: int) -> None:
        self.write_samples(self.run_dir.samples / f"samples_{step:07d}.png",
                           self.train_config["sample_count"], self.train_config["temperature"],
                           seed=step)

    def sample(self, output_path: Path, count: int, temperature: float, seed: int) -> Path:
        """`blogml sample`: like the grids of samples/, with a progress bar over the code
        positions (on a terminal), since a large grid takes minutes."""
        positions = self.grid * self.grid
        with self.evaluation_weights(), tqdm(total=positions, desc="sampling", unit="code",
                                             disable=not interactive(), leave=False,
                                             file=sys.stderr) as bar:
            return self.write_samples(output_path, count, temperature, seed,
                                      on_position=lambda _: bar.update(1))

    def write_samples(self, path: Path, count: int, temperature: float, seed: int,
                      on_position: Callable[[int], None] | None = None) -> Path:
        """Sample `count` code grids, decode them with the VQ-VAE, save one PNG grid;
        `on_position` is called after each code position (see `prior.sample`)."""
        grids = sample(lambda tokens: self.distribution.predict_on_batch(self.model, tokens),
                       count, self.num_codes, self.grid, temperature, seed, on_position)
        images = to_uint8(keras.ops.convert_to_numpy(self.vqvae.model.decode_codes(grids)))
        columns = math.ceil(math.sqrt(count))
        rows = [images[i:i + columns] for i in range(0, count, columns)]
        return save_grid(rows, path)
