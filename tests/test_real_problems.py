"""The optbench problems on the seed's real models, `vqvae_tiny` and `nl2sql_tiny`: their
data are what the vqvae / nl2sql tasks' own data code reads from files the CLI makes, a
function of the seed; the models are the seed's classes; their metrics are what they claim;
they train through `blogml train`."""

from __future__ import annotations

import itertools
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from blogml.cli.main import cli
from blogml.data.batches import ArrayBatches
from blogml.data.nl2sql_sql import NOT_A_VALUE, NOT_SELECTED
from blogml.models.nl2sql import NL2SQLModel
from blogml.models.vqvae import VQVAE
from blogml.runners.events import read_events
from blogml.runners.nl2sql.features import INPUT_NAMES, LABEL_NAMES
from blogml.runners.nl2sql.runner import NL2SQLRunner
from blogml.runners.optbench.real_problems import question_splits
from blogml.runners.rundir import RunDir
from blogml.runners.vqvae.runner import VQVAERunner
from blogml.tasks.configs import check_config
from blogml.tasks.problems import PROBLEMS

FACES = {"train": 40, "val": 5, "test": 5}  # CelebA's 80/10/10 of 50: synth's own partition
QUESTIONS = {"train": 60, "val": 20, "test": 10}
SMALL_VQVAE = {"z_dim": 8, "num_codes": 16}
SMALL_BERT = {"layers": 1, "heads": 2, "head_size": 8, "intermediate_size": 16,
              "link_units": 8}


def invoke(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


def checked(raw: dict) -> dict:
    values, issues = check_config(raw, "x.yaml")
    assert issues == []
    return values


def optbench(problem: str, sizes: dict[str, int], model: dict | None = None, **data) -> dict:
    return checked({"task": "optbench", "data": {
        "problem": problem, "num_train": sizes["train"], "num_val": sizes["val"],
        "num_test": sizes["test"], **data}, "model": model or {}})


def splits_of(values: dict, seed: int) -> dict:
    return PROBLEMS[values["data"]["problem"]].builder().splits(values["data"], seed)


def test_vqvae_tiny_images_are_what_the_vqvae_task_reads_from_the_cli_made_cache(tmp_path):
    # The CLI's own faces and cache: `data synth celeba` + `data prepare celeba` at 64 px.
    invoke("data", "synth", "celeba", "--out", str(tmp_path / "src"), "--count", "50",
           "--seed", "3", "--size", "64x78")
    cache = tmp_path / "faces64.h5"
    invoke("data", "prepare", "celeba", "--src", str(tmp_path / "src"), "--out", str(cache),
           "--size", "64", "--crop", "64")
    values = checked({"task": "vqvae", "seed": 3, "data": {"path": str(cache)},
                      "train": {"batch_size": 8, "sample_count": 4}})
    task = VQVAERunner(values, RunDir(tmp_path / "run"), "x.yaml")
    task.build_data()
    theirs = {split: np.concatenate([images for (images,) in task.eval_batches(split)])
              for split in FACES}
    ours = splits_of(optbench("vqvae_tiny", FACES, image_size=64), seed=3)
    for split in FACES:
        (images,) = ours[split]
        assert images.dtype == np.float32 and images.shape == (FACES[split], 64, 64, 3)
        np.testing.assert_array_equal(images, theirs[split], err_msg=split)
    # The optbench order over the arrays is the vqvae task's over the file, batch by batch.
    # 7 batches of 8 out of 40 images: into the second pass, whose order is another draw.
    stream = zip(task.train_batches(0), ArrayBatches(ours["train"], 8, seed=3).batches(0))
    for (expected,), (got,) in itertools.islice(stream, 7):
        np.testing.assert_array_equal(got, expected)
    task.images.close()
    # Smaller images are the mean of each 2 x 2 (4 x 4) block of the cache's.
    for size in (32, 16):
        (small,) = splits_of(optbench("vqvae_tiny", FACES, image_size=size), seed=3)["val"]
        f = 64 // size
        expected = theirs["val"].reshape(5, size, f, size, f, 3).mean(axis=(2, 4))
        assert small.shape == (5, size, size, 3)
        np.testing.assert_allclose(small, expected, atol=1e-6)


def test_vqvae_tiny_data_are_a_function_of_the_seed():
    values = optbench("vqvae_tiny", FACES, image_size=16)
    first, again, other = splits_of(values, 1), splits_of(values, 1), splits_of(values, 2)
    for split in FACES:
        np.testing.assert_array_equal(first[split][0], again[split][0])
        assert not np.array_equal(first[split][0], other[split][0])


def test_nl2sql_tiny_features_are_what_the_nl2sql_task_encodes_from_the_cli_made_files(
        tmp_path):
    # The CLI's files; the val file holds optbench's val then test questions.
    invoke("data", "synth", "nl2sql", "--out", str(tmp_path), "--seed", "5", "--train", "60",
           "--val", "30", "--test", "1")
    values = checked({"task": "nl2sql", "seed": 5,
                      "data": {"root": str(tmp_path), "max_length": 96},
                      "model": {"hidden_size": 16, "heads": 2, "layers": 1}})
    task = NL2SQLRunner(values, RunDir(tmp_path / "run"), "x.yaml")
    task.build_data()
    ours, features = question_splits(QUESTIONS, 96, seed=5)
    val = task.data["val"]
    theirs = {"train": task.train_features,
              "val": task._features(val.questions[:20], val.tables),
              "test": task._features(val.questions[20:], val.tables)}
    for split, count in QUESTIONS.items():
        assert [q.line for q in features[split].questions] == [
            q.line for q in theirs[split].questions]
        inputs, labels, weights = ours[split]
        assert len(inputs) == len(labels) == len(weights) == count
        expected = theirs[split]
        columns = expected.inputs["header_mask"].shape[1]
        pairs = [(inputs.arrays, expected.inputs, INPUT_NAMES)]
        if split == "train":  # the task makes training labels only for its training split
            pairs.append((labels.arrays, expected.labels, LABEL_NAMES))
        for got, want, names in pairs:
            for name in names:
                array = got[name]
                if name in ("header_positions", "header_mask", "agg"):
                    # Our column axis spans the tables of every split: the rest is padding.
                    pad = NOT_SELECTED if name == "agg" else 0
                    assert (array[:, columns:] == pad).all(), name
                    array = array[:, :columns]
                np.testing.assert_array_equal(array, want[name], err_msg=f"{split} {name}")
    assert features["test"].labels["conn"].shape == (10,)  # test questions are labelled too


def test_nl2sql_tiny_data_are_a_function_of_the_seed():
    first, _ = question_splits(QUESTIONS, 96, seed=1)
    again, _ = question_splits(QUESTIONS, 96, seed=1)
    other, _ = question_splits(QUESTIONS, 96, seed=2)
    for split in QUESTIONS:
        for a, b, c in zip(first[split], again[split], other[split]):
            assert a.arrays.keys() == b.arrays.keys()
            for name in a.arrays:
                np.testing.assert_array_equal(a.arrays[name], b.arrays[name])
        assert not np.array_equal(first[split][0].arrays["token_ids"],
                                  other[split][0].arrays["token_ids"])


def compiled_problem(values: dict) -> tuple[keras.Model, dict]:
    keras.utils.set_random_seed(0)
    problem = PROBLEMS[values["data"]["problem"]].builder()
    splits = problem.splits(values["data"], 0)
    model = problem.build_model(values["data"], values["model"], 0)
    model.compile(optimizer="sgd", **problem.compile_args(values["data"], values["model"]))
    return model, splits


def test_vqvae_tiny_is_the_seeds_vqvae_and_reports_its_metrics():
    values = optbench("vqvae_tiny", FACES, SMALL_VQVAE, image_size=16)
    model, splits = compiled_problem(values)
    assert type(model) is VQVAE
    assert (model.image_size, model.num_codes, model.quantizer.update) == (16, 16, "loss")
    logs = model.test_on_batch(*splits["val"], return_dict=True)
    assert set(PROBLEMS["vqvae_tiny"].metrics) <= set(logs)
    # PSNR on [0, 1] pixels, per image, averaged.
    (images,) = splits["val"]
    out = keras.ops.convert_to_numpy(model(images)["reconstruction"])
    mse = np.mean(((out - images) / 2) ** 2, axis=(1, 2, 3))
    assert logs["psnr"] == pytest.approx(np.mean(10 * np.log10(1 / mse)), rel=1e-4)


def test_nl2sql_tiny_is_the_seeds_model_and_its_head_accuracies_are_masked_right():
    values = optbench("nl2sql_tiny", QUESTIONS, SMALL_BERT)
    model, splits = compiled_problem(values)
    assert type(model) is NL2SQLModel
    words = model.encoder.get_layer("embeddings").word_embeddings
    assert words.input_dim == 21128  # the shipped Chinese BERT vocabulary
    assert model.encoder.output["sequence_output"].shape[-1] == 16  # heads x head_size
    inputs, labels, _ = (columns[:] for columns in splits["val"])
    logs = model.test_on_batch(*(columns[:] for columns in splits["val"]), return_dict=True)
    assert set(PROBLEMS["nl2sql_tiny"].metrics) <= set(logs)
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model.predict_on_batch(inputs).items()}
    value_tokens = (inputs["question_mask"] == 1) & (labels["op"] != NOT_A_VALUE)
    hits = (labels["link"] == out["link"].argmax(-1)[..., None]).any(-1)
    expected = {
        "conn": np.mean(out["conn"].argmax(-1) == labels["conn"]),
        "agg": (out["agg"].argmax(-1) == labels["agg"])[inputs["header_mask"] == 1].mean(),
        "op": (out["op"].argmax(-1) == labels["op"])[labels["op_mask"] == 1].mean(),
        "link": hits[value_tokens].mean()}
    for head, accuracy in expected.items():
        assert logs[f"{head}_accuracy"] == pytest.approx(accuracy, abs=1e-5), head


def issues_of(raw: dict) -> list[str]:
    _, issues = check_config({"task": "optbench", **raw}, "x.yaml")
    return [str(issue) for issue in issues]


@pytest.mark.parametrize("raw, expected", [
    ({"data": {"problem": "vqvae_tiny", "image_size": 24}},
     ["x.yaml: data.image_size: must be one of 16, 32, 64, got 24"]),
    ({"data": {"problem": "vqvae_tiny"}, "model": {"num_code": 8}},
     ["x.yaml: model.num_code: unknown key; did you mean 'num_codes'?"]),
    ({"data": {"problem": "nl2sql_tiny", "max_length": 8}},
     ["x.yaml: data.max_length: must be an integer >= 16 and <= 512, got 8"]),
    ({"data": {"problem": "nl2sql_tiny"}, "model": {"z_dim": 8}},
     ["x.yaml: model.z_dim: is a model key of vqvae_tiny, not of nl2sql_tiny; remove it or "
      "change data.problem"]),
    ({"data": {"problem": "nl2sql_tiny"}, "train": {"monitor": "val_psnr"}},
     ["x.yaml: train.monitor: val_psnr is a metric of vqvae_tiny, not of nl2sql_tiny; "
      "expected one of: val_loss, val_conn_accuracy, val_agg_accuracy, val_op_accuracy, "
      "val_link_accuracy"]),
])
def test_config_errors_name_the_key(raw, expected):
    assert issues_of(raw) == expected


@pytest.mark.slow
@pytest.mark.parametrize("problem, data, model, learning_rate", [
    ("vqvae_tiny", {"num_train": 64, "image_size": 16}, SMALL_VQVAE, 3e-3),
    ("nl2sql_tiny", {"num_train": 64}, SMALL_BERT, 3e-3),
])
def test_a_short_blogml_train_lowers_the_loss_and_logs_the_metrics(
        in_tmp, problem, data, model, learning_rate):
    config = {"task": "optbench", "seed": 0, "run_dir": "runs/{config}",
              "data": {"problem": problem, "num_val": 16, "num_test": 16, **data},
              "model": model, "optimizer": {"name": "adam", "learning_rate": learning_rate},
              "train": {"epochs": 5, "batch_size": 16, "log_every": 4, "eval_every": 10}}
    Path("tiny.yaml").write_text(yaml.safe_dump(config))
    invoke("train", "tiny.yaml")
    events = read_events(in_tmp / "runs" / "tiny" / "metrics.jsonl")
    train = [e for e in events if e["event"] == "train"]
    val = [e for e in events if e["event"] == "val"]
    assert [e["step"] for e in val] == [10, 20]
    assert train[-1]["loss"] < train[0]["loss"]
    assert val[-1]["loss"] < val[0]["loss"]
    for event in val:
        assert set(PROBLEMS[problem].metrics) <= set(event)
        assert all(np.isfinite(event[m]) for m in PROBLEMS[problem].metrics)
