"""`task: nl2sql` end to end on synthetic data in the competition layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from blogml.cli.main import cli
from blogml.metrics.nl2sql import score_files
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


def test_train_eval_and_predict_round_trip_through_the_metric(in_tmp, demo_data):
    result = invoke("train", str(nl2sql_config(in_tmp, demo_data)))
    assert result.exit_code == 0, result.output
    run = in_tmp / "runs" / "nl"
    summary = json.loads((run / "summary.json").read_text())
    alignment = summary["data"]["alignment"]["train"]
    assert alignment["failed"] == 0 and alignment["questions_fully_aligned"] == 1.0
    assert alignment["normalised"] > 0  # numbers written in Chinese or with units
    assert alignment["verbatim"] + alignment["normalised"] == pytest.approx(1.0)
    assert summary["data"]["train_questions"] == {"fully_labelled": 160, "partly_labelled": 0,
                                                  "left_out": 0}
    assert summary["final"]["val"]["lf_accuracy"] >= 0.0

    scored = invoke("eval", str(run), "--split", "val", "--checkpoint", "last")
    assert scored.exit_code == 0, scored.output
    metrics = json.loads(scored.output)
    assert metrics["score"] == pytest.approx((metrics["lf_accuracy"] + metrics["ex_accuracy"])
                                             / 2)

    # predict on the val questions: scoring the file gives eval's numbers exactly.
    val = demo_data / "val"
    predicted = invoke("predict", str(run), "--checkpoint", "last", "--input",
                       str(val / "val.json"), "--output", "pred.json")
    assert predicted.exit_code == 0, predicted.output
    lines = Path("pred.json").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 40 and all({"sel", "agg", "cond_conn_op", "conds"} <= set(json.loads(x))
                                    for x in lines)
    rescored = score_files(val / "val.json", Path("pred.json"), val / "val.db")
    for name in ("lf_accuracy", "ex_accuracy", "score", "cond_values_accuracy"):
        assert rescored[name] == pytest.approx(metrics[name]), name


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


def test_fine_tunes_a_hugging_face_bert_given_by_path(in_tmp, demo_data):
    """`model.pretrained` loads the checkpoint's weights (and its vocab.txt) into the
    encoder the heads sit on; training starts from them."""
    import torch  # the test extra's reference; a missing one fails, it does not skip
    import transformers
    from safetensors.numpy import load_file

    from blogml.config.loader import LoadedConfig, check_config
    from blogml.runners.launch import build_runner
    from blogml.runners.rundir import RunDir

    torch.manual_seed(0)
    bert_dir = in_tmp / "tiny-bert-chinese"
    reference = transformers.BertModel(transformers.BertConfig(
        vocab_size=21128, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128))
    reference.save_pretrained(bert_dir, safe_serialization=True)
    (bert_dir / "vocab.txt").write_bytes(VOCAB.read_bytes())
    raw = yaml.safe_load(nl2sql_config(in_tmp, demo_data).read_text())
    raw["model"] = {"pretrained": str(bert_dir), "dropout": 0.0, "link_units": 16}
    values, issues = check_config(raw, "pretrained.yaml")
    assert not issues, issues
    runner = build_runner(LoadedConfig("pretrained.yaml", values), RunDir(in_tmp / "run"))
    weights = load_file(str(bert_dir / "model.safetensors"))
    encoder = runner.model.encoder
    np.testing.assert_array_equal(
        keras_numpy(encoder.get_layer("embeddings").word_embeddings.embeddings),
        weights["embeddings.word_embeddings.weight"])
    np.testing.assert_array_equal(
        keras_numpy(encoder.get_layer("layer_0").query.kernel),
        weights["encoder.layer.0.attention.self.query.weight"].T)
    assert runner.tokenizer.vocab_size == 21128


def keras_numpy(variable) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(variable)
