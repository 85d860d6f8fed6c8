"""`task: optbench`: an MLP on a synthetic classification set, trained by one optimizer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras

from blogml.data.batches import ArrayBatches, Batch, eval_batches
from blogml.data.synthetic import teacher_splits
from blogml.models.mlp import build_mlp
from blogml.runners.base import BaseRunner


class OptbenchRunner(BaseRunner):
    splits = ("train", "val", "test")

    def build_data(self) -> None:
        data = self.config["data"]
        self.splits_data = teacher_splits(
            {"train": data["num_train"], "val": data["num_val"], "test": data["num_test"]},
            data["num_features"], data["num_classes"], data["label_noise"], self.config["seed"])
        self._train = ArrayBatches(self.splits_data["train"], self.train_config["batch_size"],
                                   self.config["seed"])
        self.batches_per_pass = self._train.batches_per_pass

    def train_batches(self, start_step: int) -> Iterator[Batch]:
        return self._train.batches(start_step)

    def eval_batches(self, split: str) -> Iterator[Batch]:
        return eval_batches(self.splits_data[split], max(self.train_config["batch_size"], 256))

    def build_model(self) -> keras.Model:
        data, model = self.config["data"], self.config["model"]
        return build_mlp(data["num_features"], data["num_classes"], model["hidden_units"],
                         model["activation"], model["dropout"], seed=self.config["seed"])

    def compile_args(self) -> dict[str, Any]:
        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}
