"""The Keras side of each optbench problem: its data splits, model, loss and metrics.

`PROBLEMS` (blogml/tasks/problems.py) names the builder class of each problem; the runner calls it
with the resolved `data` and `model` sections and the seed. Every problem's data are NumPy
arrays drawn from the seed, so the runner batches (and resumes) all of them the same way.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from blogml.data import synthetic
from blogml.models.embedding_bag import build_embedding_bag
from blogml.models.mlp import build_mlp
from blogml.models.objectives import (
    NoisyQuadratic,
    NoisyRosenbrock,
    distance_to,
    quadratic_excess,
    rosenbrock_value,
)
from blogml.models.parameter_vector import build_parameter_model

Splits = dict[str, tuple[np.ndarray, ...]]
Section = dict[str, Any]


def split_sizes(data: Section) -> dict[str, int]:
    return {"train": data["num_train"], "val": data["num_val"], "test": data["num_test"]}


class ProblemBuilder:
    """What a problem gives the runner."""

    def splits(self, data: Section, seed: int) -> Splits:
        """Every split as parallel arrays (inputs, targets), drawn from `seed`."""
        raise NotImplementedError

    def build_model(self, data: Section, model: Section, seed: int) -> keras.Model:
        raise NotImplementedError

    def compile_args(self, data: Section, model: Section) -> dict[str, Any]:
        """`loss` and `metrics` for `model.compile`, named as in the problem's `metrics`."""
        raise NotImplementedError


def _classifier_args() -> dict[str, Any]:
    return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}


def _exact_metrics(suboptimality: Any, optimum: np.ndarray) -> list[keras.metrics.Metric]:
    return [keras.metrics.MeanMetricWrapper(suboptimality, name="suboptimality"),
            keras.metrics.MeanMetricWrapper(distance_to(optimum), name="distance")]


class ClassificationProblem(ProblemBuilder):
    def splits(self, data: Section, seed: int) -> Splits:
        return synthetic.teacher_splits(split_sizes(data), data["num_features"],
                                        data["num_classes"], data["label_noise"], seed)

    def build_model(self, data: Section, model: Section, seed: int) -> keras.Model:
        return build_mlp(data["num_features"], data["num_classes"], model["hidden_units"],
                         model["activation"], model["dropout"], seed=seed)

    def compile_args(self, data: Section, model: Section) -> dict[str, Any]:
        return _classifier_args()


class NoisyQuadraticProblem(ProblemBuilder):
    def splits(self, data: Section, seed: int) -> Splits:
        return synthetic.quadratic_noise_splits(split_sizes(data), data["dim"], data["noise"],
                                                seed)

    def build_model(self, data: Section, model: Section, seed: int) -> keras.Model:
        if model["init"] == "ones":
            initial = np.ones(data["dim"])
        else:
            initial = np.random.default_rng([seed, 100]).standard_normal(data["dim"])
        return build_parameter_model(initial, "noisy_quadratic")

    def compile_args(self, data: Section, model: Section) -> dict[str, Any]:
        h = synthetic.curvatures(data["dim"], data["curvature_min"], data["curvature_max"])
        return {"loss": NoisyQuadratic(h),
                "metrics": _exact_metrics(quadratic_excess(h), np.zeros(data["dim"]))}


class RosenbrockProblem(ProblemBuilder):
    def splits(self, data: Section, seed: int) -> Splits:
        return synthetic.rosenbrock_noise_splits(split_sizes(data), data["dim"], data["noise"],
                                                 seed)

    def build_model(self, data: Section, model: Section, seed: int) -> keras.Model:
        return build_parameter_model(np.resize(model["start"], data["dim"]), "rosenbrock")

    def compile_args(self, data: Section, model: Section) -> dict[str, Any]:
        a, b = data["a"], data["b"]
        optimum = np.resize([a, a * a], data["dim"])
        return {"loss": NoisyRosenbrock(a, b),
                "metrics": _exact_metrics(rosenbrock_value(a, b), optimum)}


class EmbeddingBagProblem(ProblemBuilder):
    def splits(self, data: Section, seed: int) -> Splits:
        return synthetic.bag_splits(split_sizes(data), data["vocab_size"], data["zipf_exponent"],
                                    data["min_length"], data["max_length"], data["num_classes"],
                                    data["teacher_dim"], data["label_noise"], seed)

    def build_model(self, data: Section, model: Section, seed: int) -> keras.Model:
        return build_embedding_bag(data["vocab_size"], data["max_length"],
                                   model["embedding_dim"], data["num_classes"])

    def compile_args(self, data: Section, model: Section) -> dict[str, Any]:
        return _classifier_args()
