"""The problems `task: optbench` can train, chosen by `data.problem` (checked without Keras).

Each problem declares its own `data` and `model` keys, the metrics its evaluation reports
(what `train.monitor` may name) and where its Keras side lives (imported only when a run
starts). A new workload, such as a tiny VQ-VAE or NL2SQL model, is one more entry in
`PROBLEMS` plus one builder class.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from blogml.config.schema import Choice, Float, Int, Issues, ListOf, Spec, Str, Validator, join


@dataclass(frozen=True)
class Problem:
    name: str
    doc: str
    data: dict[str, Spec]
    model: dict[str, Spec]
    metrics: tuple[str, ...]  # evaluation metrics; `train.monitor` names one as val_<metric>
    monitor: str
    monitor_mode: str
    builder_path: str  # "module:Class" of its ProblemBuilder, imported when a run starts
    validators: tuple[Validator, ...] = ()  # cross-key rules of `data`

    def builder(self) -> Any:
        """A new instance of its `ProblemBuilder` (Keras: the runners' layer, named by path)."""
        module, _, attribute = self.builder_path.partition(":")
        return getattr(importlib.import_module(module), attribute)()


def _split_sizes(train: int, val: int, test: int) -> dict[str, Spec]:
    return {
        "num_train": Int(train, "training examples", min=16),
        "num_val": Int(val, "validation examples", min=1),
        "num_test": Int(test, "test examples", min=1),
    }


def _label_noise() -> Float:
    return Float(0.05, "fraction of labels replaced by a random class", min=0.0, max=1.0)


def _curvature_order(data: dict[str, Any], path: str, issues: Issues) -> None:
    if data["curvature_max"] < data["curvature_min"]:
        issues.add(join(path, "curvature_max"),
                   f"must be >= curvature_min ({data['curvature_min']:g}), "
                   f"got {data['curvature_max']:g}")


def _even_dim(data: dict[str, Any], path: str, issues: Issues) -> None:
    if data["dim"] % 2:
        issues.add(join(path, "dim"), f"must be even (the variables form (x, y) pairs), "
                                      f"got {data['dim']}")


def _bag_lengths(data: dict[str, Any], path: str, issues: Issues) -> None:
    if data["max_length"] < data["min_length"]:
        issues.add(join(path, "max_length"), f"must be >= min_length ({data['min_length']}), "
                                             f"got {data['max_length']}")


_BUILDERS = "blogml.runners.optbench.builders"
_REAL = "blogml.runners.optbench.real_problems"

PROBLEMS: dict[str, Problem] = {p.name: p for p in [
    Problem(
        "classification",
        "an MLP on Gaussian inputs labelled by a random two-layer tanh teacher network",
        data={**_split_sizes(4096, 1024, 1024),
              "num_features": Int(32, "input dimensions", min=1),
              "num_classes": Int(10, "classes", min=2),
              "label_noise": _label_noise()},
        model={"hidden_units": ListOf(Int(min=1), [128, 128], "widths of the hidden Dense "
                                                              "layers"),
               "activation": Str("relu", "hidden activation",
                                 choices=["relu", "gelu", "tanh", "silu"]),
               "dropout": Float(0.0, "dropout rate after each hidden layer", min=0.0, max=0.9)},
        metrics=("loss", "accuracy"), monitor="val_accuracy", monitor_mode="max",
        builder_path=f"{_BUILDERS}:ClassificationProblem"),
    Problem(
        "noisy_quadratic",
        "θ ∈ R^dim with loss ½·Σ h_i (θ_i − ξ_i)² per example, ξ ~ N(0, noise²); optimum θ* = 0",
        data={**_split_sizes(8192, 512, 512),
              "dim": Int(100, "number of parameters θ_i", min=1),
              "curvature_min": Float(0.01, "smallest curvature h_i (the h_i are log-spaced)",
                                     min=0.0, min_exclusive=True),
              "curvature_max": Float(1.0, "largest curvature h_i", min=0.0, min_exclusive=True),
              "noise": Float(1.0, "standard deviation σ of the per-example noise ξ", min=0.0)},
        model={"init": Str("ones", "initial θ: all ones, or N(0, 1) drawn from the seed",
                           choices=["ones", "normal"])},
        metrics=("loss", "suboptimality", "distance"), monitor="val_suboptimality",
        monitor_mode="min", builder_path=f"{_BUILDERS}:NoisyQuadraticProblem",
        validators=(_curvature_order,)),
    Problem(
        "rosenbrock",
        "θ = (x_1, y_1, x_2, y_2, ...) with loss Σ_j (a − x_j)² + b(y_j − x_j²)², each term "
        "scaled by per-example multiplicative noise; optimum x_j = a, y_j = a²",
        data={**_split_sizes(8192, 512, 512),
              "dim": Int(2, "number of parameters (pairs (x, y); even)", min=2),
              "a": Float(1.0, "the optimum's x", min=0.0, min_exclusive=True),
              "b": Float(100.0, "weight of the curved valley term", min=0.0, min_exclusive=True),
              "noise": Float(0.0, "σ of the log-normal factor (mean 1) scaling each term of each "
                                  "example; 0: the exact function", min=0.0)},
        model={"start": ListOf(Float(), [-1.2, 1.0], "starting point, repeated to fill dim "
                                                     "coordinates", min_length=1)},
        metrics=("loss", "suboptimality", "distance"), monitor="val_suboptimality",
        monitor_mode="min", builder_path=f"{_BUILDERS}:RosenbrockProblem",
        validators=(_even_dim,)),
    Problem(
        "embedding_bag",
        "bags of Zipf-distributed token ids labelled by a random teacher over token "
        "embeddings; Embedding → masked mean → Dense (sparse gradients)",
        data={**_split_sizes(16384, 2048, 2048),
              "vocab_size": Int(50000, "token ids (0 is padding)", min=3),
              "zipf_exponent": Float(1.1, "token of frequency rank r has probability ∝ r^-s",
                                     min=0.0),
              "min_length": Int(4, "shortest bag (tokens)", min=1),
              "max_length": Int(32, "longest bag (tokens); shorter bags are padded with 0",
                                min=1),
              "num_classes": Int(4, "classes", min=2),
              "teacher_dim": Int(16, "width of the teacher's token embeddings", min=1),
              "label_noise": _label_noise()},
        model={"embedding_dim": Int(32, "width of the token embeddings", min=1)},
        metrics=("loss", "accuracy"), monitor="val_accuracy", monitor_mode="max",
        builder_path=f"{_BUILDERS}:EmbeddingBagProblem", validators=(_bag_lengths,)),
    Problem(
        "vqvae_tiny",
        "the seed's VQ-VAE, small, on synthetic faces (`data synth celeba`) drawn from the "
        "seed and read through the real HDF5 cache (`data prepare celeba`, 64 px)",
        data={**_split_sizes(1024, 128, 128),
              "image_size": Choice([16, 32, 64], 32, "side of the images: the 64 px cache, "
                                                     "box-downsampled")},
        model={"z_dim": Int(16, "channels of the encoder output and of each code", min=1),
               "num_codes": Int(32, "codebook size K", min=2),
               "beta": Float(0.25, "commitment weight β", min=0.0),
               "residual_blocks": Int(0, "residual blocks in encoder and decoder", min=0),
               "codebook_update": Str("loss", "how the codebook learns: by the codebook loss "
                                              "(trained by the optimizer), or by moving "
                                              "averages of the encoder outputs",
                                      choices=["loss", "ema"]),
               "decay": Float(0.99, "EMA decay γ (codebook_update ema)", min=0.0, max=1.0)},
        metrics=("loss", "mse", "psnr", "commitment"), monitor="val_psnr", monitor_mode="max",
        builder_path=f"{_REAL}:VQVAETinyProblem"),
    Problem(
        "nl2sql_tiny",
        "the seed's four-head NL2SQL model with a tiny random BERT (Chinese BERT vocab), on "
        "synthetic questions (`data synth nl2sql`) drawn from the seed and read through the "
        "competition-format reader and the nl2sql task's features",
        data={**_split_sizes(1024, 128, 128),
              "max_length": Int(96, "tokens per question with its headers (longer inputs are "
                                    "shortened as in task nl2sql)", min=16, max=512)},
        model={"layers": Int(2, "transformer blocks of the random BERT", min=1),
               "heads": Int(2, "attention heads", min=1),
               "head_size": Int(16, "width of each head; the BERT's width is heads × head_size",
                                min=1),
               "intermediate_size": Int(64, "feed-forward width", min=1),
               "dropout": Float(0.0, "BERT's hidden and attention dropout", min=0.0, max=0.9),
               "link_units": Int(32, "width of the value-token x column scorer", min=1)},
        metrics=("loss", "conn_accuracy", "agg_accuracy", "op_accuracy", "link_accuracy"),
        monitor="val_loss", monitor_mode="min", builder_path=f"{_REAL}:NL2SQLTinyProblem"),
]}

DEFAULT_PROBLEM = "classification"

PROBLEM_KEY = Str(DEFAULT_PROBLEM, "which problem: " + ", ".join(PROBLEMS),
                  choices=list(PROBLEMS))
