"""`task: optbench`: one optimizer trains one synthetic problem (`data.problem`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras

from blogml.data.batches import ArrayBatches, Batch, eval_batches
from blogml.runners.base import BaseRunner
from blogml.tasks.problems import PROBLEMS


class OptbenchRunner(BaseRunner):
    splits = ("train", "val", "test")

    def build_data(self) -> None:
        data = self.config["data"]
        self.problem = PROBLEMS[data["problem"]].builder()
        self.splits_data = self.problem.splits(data, self.config["seed"])
        self._train = ArrayBatches(self.splits_data["train"], self.train_config["batch_size"],
                                   self.config["seed"])
        self.batches_per_pass = self._train.batches_per_pass

    def train_batches(self, start_step: int) -> Iterator[Batch]:
        return self._train.batches(start_step)

    def eval_batches(self, split: str) -> Iterator[Batch]:
        return eval_batches(self.splits_data[split], max(self.train_config["batch_size"], 256))

    def build_model(self) -> keras.Model:
        return self.problem.build_model(self.config["data"], self.config["model"],
                                        self.config["seed"])

    def compile_args(self) -> dict[str, Any]:
        return self.problem.compile_args(self.config["data"], self.config["model"])
