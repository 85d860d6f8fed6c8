"""The optbench problems against their formulas, and their problem-dependent config schema."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from blogml.data.synthetic import bag_splits, rosenbrock_noise_splits, zipf_probabilities
from blogml.runners import checkpoint as ckpt
from blogml.runners.building import build_runner
from blogml.runners.rundir import RunDir
from blogml.tasks.configs import check_config
from blogml.tasks.problems import PROBLEMS

pytestmark = [pytest.mark.backend_neutral, pytest.mark.models]  # CI: JAX and torch too


def resolved(data: dict, model: dict | None = None, **sections) -> dict:
    values, issues = check_config({"task": "optbench", "data": data, "model": model or {},
                                   **sections}, "x.yaml")
    assert issues == []
    return values


def compiled(values: dict, learning_rate: float) -> keras.Model:
    """The problem's model and loss, under plain SGD (θ_new = θ − η·g reveals g)."""
    keras.utils.set_random_seed(0)
    problem = PROBLEMS[values["data"]["problem"]].builder()
    model = problem.build_model(values["data"], values["model"], values["seed"])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  **problem.compile_args(values["data"], values["model"]))
    return model


def theta(model: keras.Model) -> np.ndarray:
    return keras.ops.convert_to_numpy(model.get_layer("parameters").theta).astype(np.float64)


def test_noisy_quadratic_loss_gradient_and_suboptimality_follow_the_formula():
    # dim 3: h = (0.01, 0.1, 1), log-spaced; θ starts at ones.
    values = resolved({"problem": "noisy_quadratic", "dim": 3, "curvature_min": 0.01,
                       "curvature_max": 1.0})
    model = compiled(values, learning_rate=1.0)
    xi = np.array([[1.0, 0.0, 2.0], [-1.0, 1.0, 0.0]], np.float32)
    # Per example ½Σh(θ−ξ)²: ½(0 + 0.1·1 + 1·1) = 0.55 and ½(0.01·4 + 0 + 1·1) = 0.52.
    logs = model.train_on_batch(np.zeros((2, 1), np.float32), xi, return_dict=True)
    assert logs["loss"] == pytest.approx(0.535, abs=1e-6)
    # g = h ⊙ (θ − mean ξ) = (0.01·1, 0.1·0.5, 1·0); one SGD step with η = 1 subtracts it.
    np.testing.assert_allclose(theta(model), [0.99, 0.95, 1.0], atol=1e-6)
    scored = model.test_on_batch(np.zeros((5, 1), np.float32), np.ones((5, 3), np.float32),
                                 return_dict=True)
    # Exact, whatever the noise: ½Σhθ² = ½(0.01·0.9801 + 0.1·0.9025 + 1) and ‖θ‖.
    assert scored["suboptimality"] == pytest.approx(0.5500255, abs=1e-6)
    assert scored["distance"] == pytest.approx(np.sqrt(0.9801 + 0.9025 + 1.0), abs=1e-6)


def test_rosenbrock_loss_gradient_and_metrics_equal_the_analytic_values():
    # Two pairs: (x, y) = (−1.2, 1) and a second pair at the optimum (1, 1), a = 1, b = 100.
    values = resolved({"problem": "rosenbrock", "dim": 4}, {"start": [-1.2, 1.0, 1.0, 1.0]})
    model = compiled(values, learning_rate=1.0)
    dummy = np.zeros((2, 1), np.float32)
    exact = model.test_on_batch(dummy, np.ones((2, 4), np.float32), return_dict=True)
    # f = (1 + 1.2)² + 100(1 − 1.44)² = 4.84 + 19.36; the second pair adds nothing.
    assert exact["suboptimality"] == pytest.approx(24.2, rel=1e-6)
    assert exact["loss"] == pytest.approx(24.2, rel=1e-6)
    assert exact["distance"] == pytest.approx(2.2, rel=1e-6)
    # Noise factors (u, v) per example scale the two terms: mean u = 1.5, mean v = 1.
    factors = np.array([[2.0, 0.5, 9.0, 9.0], [1.0, 1.5, 9.0, 9.0]], np.float32)
    logs = model.train_on_batch(dummy, factors, return_dict=True)
    assert logs["loss"] == pytest.approx(1.5 * 4.84 + 19.36, rel=1e-6)
    # ∂/∂x = −2u(a − x) − 4bvx(y − x²) = −6.6 − 211.2;  ∂/∂y = 2bv(y − x²) = −88.
    gradient = np.array([-1.2, 1.0, 1.0, 1.0]) - theta(model)
    np.testing.assert_allclose(gradient, [-217.8, -88.0, 0.0, 0.0], rtol=1e-5, atol=1e-4)


def test_rosenbrock_noise_is_multiplicative_with_mean_one():
    exact = rosenbrock_noise_splits({"train": 10}, 2, 0.0, seed=0)["train"][1]
    assert np.array_equal(exact, np.ones((10, 2), np.float32))
    noisy = rosenbrock_noise_splits({"train": 40000}, 2, 0.5, seed=0)["train"][1]
    assert noisy.min() > 0
    # log-normal exp(σz − σ²/2): mean 1, standard deviation sqrt(exp(σ²) − 1) = 0.533.
    assert noisy.mean() == pytest.approx(1.0, abs=3 * 0.533 / np.sqrt(80000))
    assert noisy.std() == pytest.approx(np.sqrt(np.exp(0.25) - 1), rel=0.02)


def test_embedding_bag_tokens_follow_a_zipf_law_and_most_rows_are_rare():
    vocab = 20000
    ids, labels = bag_splits({"train": 4000}, vocab, 1.1, 4, 16, 4, 8, 0.0, seed=3)["train"]
    lengths = (ids != 0).sum(axis=1)
    assert lengths.min() >= 4 and lengths.max() <= 16
    # Padding only at the end of a bag.
    assert all(not ids[i, length:].any() and ids[i, :length].all()
               for i, length in enumerate(lengths))
    counts = np.bincount(ids[ids != 0], minlength=vocab)[1:]
    assert counts.sum() == lengths.sum()
    # Frequency of rank r ∝ r^-1.1: the slope of log count against log rank over the
    # frequent ranks is −1.1, and the first token is as frequent as the law says.
    ranks = np.arange(1, 101)
    slope = np.polyfit(np.log(ranks), np.log(counts[:100]), 1)[0]
    assert slope == pytest.approx(-1.1, abs=0.1)
    assert counts[0] / counts.sum() == pytest.approx(zipf_probabilities(vocab, 1.1)[0], rel=0.05)
    never = np.sum(counts == 0)
    assert never > 0.4 * vocab  # most rows of the embedding table never get a gradient
    assert set(np.unique(labels)) == {0, 1, 2, 3}


def test_embedding_bag_averages_unpadded_rows_and_its_gradient_skips_absent_rows():
    values = resolved({"problem": "embedding_bag", "vocab_size": 50, "max_length": 4,
                       "num_classes": 3}, {"embedding_dim": 5})
    model = compiled(values, learning_rate=1.0)
    (table,) = [v for v in model.trainable_variables if "embeddings" in v.path]
    dense = model.get_layer("logits")
    before = keras.ops.convert_to_numpy(table).copy()
    ids = np.array([[3, 7, 7, 0], [12, 3, 0, 0]], np.int32)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in dense.weights)
    # Mean over the bag's tokens only (padding 0 masked out), then the Dense layer.
    means = np.stack([before[[3, 7, 7]].mean(0), before[[12, 3]].mean(0)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(ids)), means @ kernel + bias,
                               atol=1e-6)
    model.train_on_batch(ids, np.array([0, 2], np.int32))
    after = keras.ops.convert_to_numpy(table)
    changed = np.any(after != before, axis=1)
    # Under SGD a row moves iff its gradient is non-zero: exactly the tokens in the batch.
    assert sorted(np.flatnonzero(changed)) == [3, 7, 12]


@pytest.mark.slow
@pytest.mark.parametrize("data, model", [
    ({"problem": "noisy_quadratic", "dim": 6, "num_train": 64}, {"init": "normal"}),
    ({"problem": "rosenbrock", "dim": 2, "noise": 0.3, "num_train": 64}, {}),
])
def test_parameter_problems_checkpoint_and_resume_exactly(tmp_path, data, model):
    def config(epochs: int) -> dict:
        return resolved(data, model, seed=4,
                        optimizer={"name": "sgd", "learning_rate": 1e-3, "momentum": 0.9},
                        train={"epochs": epochs, "batch_size": 8, "log_every": 2})

    from blogml.config.loader import LoadedConfig

    def train(folder: str, epochs: int, resume: bool) -> None:
        run = RunDir(tmp_path / folder)
        run.create()
        runner = build_runner(LoadedConfig("x.yaml", config(epochs)), run)
        assert runner.train(resume=resume).status == "finished"

    train("straight", 2, resume=False)
    train("resumed", 1, resume=False)
    train("resumed", 2, resume=True)  # continues at step 8 of 16
    a = ckpt.load_checkpoint(tmp_path / "straight" / "checkpoints" / "last")
    b = ckpt.load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last")
    assert a.meta["loop"]["step"] == b.meta["loop"]["step"] == 16
    for group in ("model", "optimizer"):
        for (path, x), (_, y) in zip(a.groups[group], b.groups[group]):
            np.testing.assert_allclose(x, y, atol=1e-6, err_msg=path)
    assert a.groups["model"][0][0] == "parameters/theta"


def issues_of(raw: dict) -> list[str]:
    _, issues = check_config({"task": "optbench", **raw}, "x.yaml")
    return [str(issue) for issue in issues]


@pytest.mark.parametrize("raw, expected", [
    ({"data": {"dim": 10}},
     ["x.yaml: data.dim: is a data key of noisy_quadratic, rosenbrock, not of classification; "
      "remove it or change data.problem"]),
    ({"data": {"problem": "rosenbrock"}, "model": {"hidden_units": [8], "strat": [1.0]}},
     ["x.yaml: model.hidden_units: is a model key of classification, not of rosenbrock; "
      "remove it or change data.problem",
      "x.yaml: model.strat: unknown key; did you mean 'start'?"]),
    ({"data": {"problem": "noisy_quadratic"}, "train": {"monitor": "val_accuracy"}},
     ["x.yaml: train.monitor: val_accuracy is a metric of classification, embedding_bag, not "
      "of noisy_quadratic; expected one of: val_loss, val_suboptimality, val_distance"]),
    ({"data": {"problem": "embedding_bag"}, "train": {"monitor": "val_acc"}},
     ["x.yaml: train.monitor: unknown value 'val_acc'; did you mean 'val_accuracy'?"]),
    # An unknown problem hides nothing else that is wrong.
    ({"data": {"problem": "rosenbrok", "dim": 2}, "seed": -1},
     ["x.yaml: data.problem: unknown value 'rosenbrok'; did you mean 'rosenbrock'?",
      "x.yaml: seed: must be an integer >= 0, got -1"]),
    ({"data": {"problem": "rosenbrock", "dim": 3}},
     ["x.yaml: data.dim: must be even (the variables form (x, y) pairs), got 3"]),
    ({"data": {"problem": "noisy_quadratic", "curvature_min": 2.0}},
     ["x.yaml: data.curvature_max: must be >= curvature_min (2), got 1"]),
    ({"data": {"problem": "embedding_bag", "min_length": 8, "max_length": 4}},
     ["x.yaml: data.max_length: must be >= min_length (8), got 4"]),
])
def test_keys_and_metrics_are_checked_against_the_chosen_problem(raw, expected):
    assert issues_of(raw) == expected


def test_each_problem_resolves_to_its_own_keys_and_monitor():
    for name, problem in PROBLEMS.items():
        values = resolved({"problem": name})
        assert set(values["data"]) == {"problem", *problem.data}
        assert set(values["model"]) == set(problem.model)
        assert values["train"]["monitor"] == problem.monitor
        assert values["train"]["monitor_mode"] == problem.monitor_mode
    assert resolved({})["data"]["problem"] == "classification"  # old configs keep working
