"""`task: nl2sql` end to end on synthetic data in the competition layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from blogml.cli.main import cli
from blogml.runners import checkpoint as ckpt
from blogml.runners.nl2sql.runner import NL2SQLRunner
from tests.conftest import VOCAB, assert_same_checkpoint, sigterm_at

pytestmark = [pytest.mark.slow, pytest.mark.backend_neutral]

def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def nl2sql_config(folder: Path, data: Path, name: str = "nl", **train) -> Path:
    config = {
        "task": "nl2sql", "seed": 0, "run_dir": f"runs/{name}",
        "data": {"root": str(data), "max_length": 96},
        # No model.vocab: the Chinese BERT vocabulary shipped with blogml.
        "model": {"hidden_size": 32, "layers": 1, "heads": 2,
                  "intermediate_size": 64, "dropout": 0.1, "link_units": 16},
        "optimizer": {"name": "adam", "learning_rate": 1e-3},
        "train": {"epochs": 2, "batch_size": 32, "log_every": 1, **train},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def first_training_questions(demo_data: Path, folder: Path, count: int) -> Path:
    """The demo data with only its first `count` training questions (val, test as they are)."""
    for split in ("train", "val", "test"):
        (folder / split).mkdir(parents=True)
        for name in (f"{split}.json", f"{split}.tables.json", f"{split}.db"):
            (folder / split / name).write_bytes((demo_data / split / name).read_bytes())
    questions = (folder / "train/train.json").read_text(encoding="utf-8").splitlines()
    (folder / "train/train.json").write_text("\n".join(questions[:count]) + "\n",
                                             encoding="utf-8")
    return folder


def test_train_eval_and_predict_round_trip_through_the_metric(in_tmp, demo_data):
    """The model learns (measured where a few seconds allow it: on 32 training questions,
    which it memorises in 100 steps), and eval's numbers are those the run logged and those
    `blogml score` gives the file `predict` writes."""
    data = first_training_questions(demo_data, in_tmp / "data", 32)
    config = nl2sql_config(in_tmp, data, epochs=50, batch_size=16, eval_every=10_000,
                           checkpoint_every=10_000)
    raw = yaml.safe_load(config.read_text())
    raw["model"]["dropout"] = 0.0
    raw["optimizer"]["learning_rate"] = 5e-3
    config.write_text(yaml.safe_dump(raw, allow_unicode=True))
    result = invoke("train", str(config))
    assert result.exit_code == 0, result.output
    run = in_tmp / "runs" / "nl"
    summary = json.loads((run / "summary.json").read_text())
    alignment = summary["data"]["alignment"]["train"]
    assert alignment["failed"] == 0 and alignment["questions_fully_aligned"] == 1.0
    assert alignment["normalised"] > 0  # numbers written in Chinese or with units
    assert alignment["verbatim"] + alignment["normalised"] == pytest.approx(1.0)
    assert summary["data"]["train_questions"] == {"fully_labelled": 32, "partly_labelled": 0,
                                                  "left_out": 0}
    assert summary["step"] == 100

    def evaluated(split: str) -> dict:
        scored = invoke("eval", str(run), "--split", split, "--checkpoint", "last")
        assert scored.exit_code == 0, scored.output
        metrics = json.loads(scored.output.strip().splitlines()[-1])
        assert metrics["step"] == 100
        return {k: v for k, v in metrics.items() if k.endswith("accuracy") or k == "score"}

    # eval of the last checkpoint reproduces the validation the run ended with.
    assert evaluated("val") == pytest.approx(summary["final"]["val"], abs=1e-9)

    # On the training questions: `predict` then `blogml score` against the gold gives
    # eval's numbers exactly, and they are far from zero, so they check the decoding.
    train = evaluated("train")
    assert train["score"] == pytest.approx((train["lf_accuracy"] + train["ex_accuracy"]) / 2)
    gold = data / "train"
    predicted = invoke("predict", str(run), "--checkpoint", "last", "--input",
                       str(gold / "train.json"), "--output", "pred.json")
    assert predicted.exit_code == 0, predicted.output
    lines = Path("pred.json").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 32 and all({"sel", "agg", "cond_conn_op", "conds"} == set(json.loads(x))
                                     for x in lines)
    rescored = invoke("score", "--gold", str(gold / "train.json"), "--pred", "pred.json",
                      "--db", str(gold / "train.db"))
    assert rescored.exit_code == 0, rescored.output
    rescored = json.loads(rescored.output.strip().splitlines()[-1])
    assert {k: rescored[k] for k in train} == pytest.approx(train, abs=1e-9)

    # It learned: the same model untrained (same seed: the weights the run started from)
    # gets LF 0 and sel 0-0.03 on these questions (measured on TensorFlow and JAX); trained,
    # LF 0.78 (TensorFlow) and 0.91 (JAX), sel 0.88 and 1.0.
    from blogml.runners.building import build_runner, config_from_run_dir
    from blogml.runners.rundir import RunDir

    untrained = build_runner(config_from_run_dir(str(run)), RunDir(in_tmp / "untrained"))
    before = untrained.evaluate("train")
    assert before["lf_accuracy"] <= 0.05
    assert train["lf_accuracy"] >= before["lf_accuracy"] + 0.4
    assert train["sel_accuracy"] >= before["sel_accuracy"] + 0.5


def test_a_question_with_an_unlocatable_value_still_trains_and_is_reported(in_tmp, demo_data):
    """Three training questions get a second condition whose value the question never
    mentions: they train with that value unlabelled, and the setup report says so in the
    summary, on the console and in train.log (which is attached before the data is read)."""
    root = in_tmp / "data"
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        for name in (f"{split}.json", f"{split}.tables.json", f"{split}.db"):
            (root / split / name).write_bytes((demo_data / split / name).read_bytes())
    lines = (root / "train/train.json").read_text(encoding="utf-8").splitlines()
    changed = []
    for index in range(3):
        record = json.loads(lines[index])
        column = record["sql"]["conds"][0][0]
        record["sql"]["conds"].append([column, 3, "不曾提到的名字"])
        record["sql"]["cond_conn_op"] = 1
        lines[index] = json.dumps(record, ensure_ascii=False)
        changed.append(index + 1)
    (root / "train/train.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke("train", str(nl2sql_config(in_tmp, root, epochs=1)))
    assert result.exit_code == 0, result.output
    run = in_tmp / "runs" / "nl"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["train_questions"] == {"fully_labelled": 157, "partly_labelled": 3,
                                                  "left_out": 0}
    log = (run / "train.log").read_text(encoding="utf-8")
    assert "fully labelled 157 (98.1%), partly labelled 3 (1.9%" in log
    for line in changed:
        assert (f"partly labelled train:{line}: value '不曾提到的名字' not found in the question"
                in log)
    assert "partly labelled 3 (1.9%" in result.output


def test_predict_reports_a_line_with_an_unknown_table_and_goes_on(in_tmp, demo_data):
    assert invoke("train", str(nl2sql_config(in_tmp, demo_data, epochs=1))).exit_code == 0
    test_dir = in_tmp / "test"
    test_dir.mkdir()
    lines = (demo_data / "test" / "test.json").read_text(encoding="utf-8").splitlines()[:4]
    broken = json.loads(lines[1])
    broken["table_id"] = "no-such-table"
    lines[1] = json.dumps(broken, ensure_ascii=False)
    (test_dir / "test.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (test_dir / "test.tables.json").write_bytes(
        (demo_data / "test" / "test.tables.json").read_bytes())
    result = CliRunner().invoke(cli, ["predict", "runs/nl", "--input",
                                      str(test_dir / "test.json"), "--output", "out.json"])
    assert result.exit_code == 0, result.output
    assert "test.json:2: " in result.output and "no-such-table" in result.output
    predictions = [json.loads(x) for x in Path("out.json").read_text().splitlines()]
    assert len(predictions) == 4
    assert predictions[1]["sel"] == [] and all(p["sel"] for i, p in enumerate(predictions)
                                                if i != 1)


def test_resume_mid_epoch_equals_an_uninterrupted_run(in_tmp, demo_data, monkeypatch):
    config = nl2sql_config(in_tmp, demo_data, eval_every=3)
    assert invoke("train", str(config), "--run-dir", "straight").exit_code == 0
    sigterm_at(monkeypatch, NL2SQLRunner, 7)  # 2 steps into the second epoch of 5
    assert invoke("train", str(config), "--run-dir", "resumed").exit_code == 130
    assert ckpt.load_checkpoint(in_tmp / "resumed/checkpoints/last").meta["loop"]["step"] == 7
    assert invoke("train", "--run-dir", "resumed", "--resume").exit_code == 0
    assert_same_checkpoint(in_tmp / "straight/checkpoints/last",
                           in_tmp / "resumed/checkpoints/last", atol=1e-5)
    a = ckpt.load_checkpoint(in_tmp / "straight/checkpoints/last")
    b = ckpt.load_checkpoint(in_tmp / "resumed/checkpoints/last")
    assert a.meta["loop"]["step"] == b.meta["loop"]["step"] == 10
    assert a.meta["loop"]["best_value"] == b.meta["loop"]["best_value"]


def test_fine_tunes_a_hugging_face_bert_given_by_path(in_tmp, demo_data, monkeypatch):
    """`model.pretrained` loads the checkpoint's weights (and its vocab.txt) into the
    encoder the heads sit on; training starts from them and moves them."""
    import torch  # the test extra's reference; a missing one fails, it does not skip
    import transformers
    from safetensors.numpy import load_file

    torch.manual_seed(0)
    bert_dir = in_tmp / "tiny-bert-chinese"
    reference = transformers.BertModel(transformers.BertConfig(
        vocab_size=21128, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128))
    reference.save_pretrained(bert_dir, safe_serialization=True)
    (bert_dir / "vocab.txt").write_bytes(VOCAB.read_bytes())
    raw = yaml.safe_load(nl2sql_config(in_tmp, demo_data).read_text())
    raw["model"] = {"pretrained": str(bert_dir), "dropout": 0.0, "link_units": 16}
    raw["optimizer"]["learning_rate"] = LR = 1e-4
    raw["train"].update(epochs=1, steps_per_epoch=2)
    (in_tmp / "pretrained.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))

    # What the run's model holds when built, before its first step, by Keras path, beside
    # the Hugging Face checkpoint's value of it.
    weights = load_file(str(bert_dir / "model.safetensors"))
    built: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    real_build = NL2SQLRunner.build_model

    def build_model(self):
        model = real_build(self)
        embeddings, layer = model.encoder.get_layer("embeddings"), model.encoder.get_layer(
            "layer_0")
        for variable, name in [
                (embeddings.word_embeddings.embeddings, "embeddings.word_embeddings.weight"),
                (layer.query.kernel, "encoder.layer.0.attention.self.query.weight"),
                (layer.intermediate_dense.kernel, "encoder.layer.0.intermediate.dense.weight"),
                (layer.output_layer_norm.gamma, "encoder.layer.0.output.LayerNorm.weight")]:
            value = weights[name].T if variable.path.endswith("kernel") else weights[name]
            built[variable.path] = keras_numpy(variable), value
        built["vocab_size"] = self.tokenizer.vocab_size
        return model

    monkeypatch.setattr(NL2SQLRunner, "build_model", build_model)
    result = invoke("train", str(in_tmp / "pretrained.yaml"), "--run-dir", "tuned")
    assert result.exit_code == 0, result.output
    assert built.pop("vocab_size") == 21128
    embeddings, *dense = built
    assert embeddings.endswith("word_embeddings/embeddings") and len(dense) == 3
    for path, (start, value) in built.items():
        np.testing.assert_array_equal(start, value, err_msg=path)  # the run loaded them

    # The run trained 2 Adam steps of η = 1e-4 from there. Adam moves a weight by at most
    # η per step (|m̂|/√v̂ <= 1.0013 at t = 2 for β = (0.9, 0.999)), and a weight with a
    # gradient by about η at each step.
    trained = dict(ckpt.load_checkpoint(in_tmp / "tuned/checkpoints/last").groups["model"])
    for path in dense:
        moved = np.abs(trained[path] - built[path][1])
        assert 0.9 * LR <= moved.max() <= 2.01 * LR, path
        if path.endswith("kernel"):  # every element of a dense kernel has a gradient
            assert np.all(moved > 0), path
    # The embedding rows of tokens the 64 questions never use have no gradient: they keep
    # the checkpoint's values exactly; the rows of the tokens used moved. (Not bounded by
    # 2η: on TensorFlow, Keras's Adam squares a sparse gradient's slices before summing a
    # row's repeats, so a token seen n times moves up to √n·η.)
    rows = np.abs(trained[embeddings] - built[embeddings][1]).max(axis=1)
    assert np.sum(rows == 0) > 20_000 and np.sum(rows >= 0.9 * LR) > 100


def keras_numpy(variable) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(variable)
