"""Resume inside an accumulation cycle and a Lookahead period equals an uninterrupted run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from blogml.cli.main import cli
from blogml.runners import checkpoint as ckpt
from blogml.runners.optbench.runner import OptbenchRunner
from tests.conftest import assert_same_checkpoint, sigterm_at, write_config

pytestmark = [pytest.mark.slow, pytest.mark.backend_neutral]

STOP_AT = 17  # micro-batch 17: 2 into a cycle of 3; update 5: 1 into a Lookahead period of 4


def test_resume_mid_accumulation_and_mid_lookahead(in_tmp, monkeypatch):
    config = write_config(
        in_tmp, model={"hidden_units": [16], "dropout": 0.0},
        optimizer={"name": "adam", "learning_rate": 0.01, "gradient_accumulation_steps": 3,
                   "lookahead": {"k": 4, "alpha": 0.5}, "ema": {"momentum": 0.9},
                   "weight_decay": 0.01, "layer_adaptation": True,
                   "schedule": {"piecewise_linear": {4: 1.0, 10: 0.5}}},
        train={"epochs": 3, "batch_size": 32, "log_every": 1, "eval_every": 8})
    result = CliRunner().invoke(cli, ["train", str(config), "--run-dir", "straight"])
    assert result.exit_code == 0, result.output

    sigterm_at(monkeypatch, OptbenchRunner, STOP_AT)  # a real signal, mid-run
    result = CliRunner().invoke(cli, ["train", str(config), "--run-dir", "resumed"])
    assert result.exit_code == 130, result.output
    stopped = ckpt.load_checkpoint(in_tmp / "resumed" / "checkpoints" / "last")
    assert stopped.meta["loop"]["step"] == STOP_AT
    optimizer_state = {p.split("/")[-1]: v for p, v in stopped.groups["optimizer"]}
    assert int(optimizer_state["micro_step"]) == STOP_AT % 3 == 2
    assert int(optimizer_state["iteration"]) == STOP_AT // 3 == 5
    assert np.any(optimizer_state["dense_0_kernel_accumulator"] != 0)  # a cycle in flight

    result = CliRunner().invoke(cli, ["train", "--run-dir", "resumed", "--resume"])
    assert result.exit_code == 0, result.output
    assert_same_checkpoint(in_tmp / "straight" / "checkpoints" / "last",
                           in_tmp / "resumed" / "checkpoints" / "last", atol=1e-6)
    best_a = json.loads((in_tmp / "straight" / "summary.json").read_text())["best"]
    best_b = json.loads((in_tmp / "resumed" / "summary.json").read_text())["best"]
    assert best_a == best_b


def test_best_checkpoint_and_eval_use_the_ema_weights(in_tmp):
    config = write_config(in_tmp, model={"hidden_units": [16], "dropout": 0.0},
                          optimizer={"name": "sgd", "learning_rate": 0.5,
                                     "ema": {"momentum": 0.9}},
                          train={"epochs": 1, "batch_size": 32, "eval_every": 16})
    assert CliRunner().invoke(cli, ["train", str(config)]).exit_code == 0
    run = in_tmp / "runs" / "tiny"
    best = ckpt.load_checkpoint(run / "checkpoints" / "best")
    last = ckpt.load_checkpoint(run / "checkpoints" / "last")
    assert best.meta["loop"]["step"] == last.meta["loop"]["step"] == 16
    averages = {p.split("/")[-1]: v for p, v in last.groups["optimizer"]}
    for (path, best_value), (_, raw_value) in zip(best.groups["model"], last.groups["model"]):
        name = path.replace("/", "_")
        corrected = averages[f"{name}_ema"]  # kept bias-corrected (blogml.optimizers.ema)
        np.testing.assert_allclose(best_value, corrected, atol=1e-6, err_msg=path)
        assert not np.allclose(best_value, raw_value)  # the raw weights are elsewhere
    scored = CliRunner().invoke(cli, ["eval", str(run), "--checkpoint", "last"])
    assert scored.exit_code == 0, scored.output
    summary = json.loads((run / "summary.json").read_text())
    assert json.loads(scored.output.strip().splitlines()[-1])["accuracy"] == pytest.approx(
        summary["final"]["val"]["accuracy"], abs=1e-6)
