"""The runner end to end, in process: eval, NaN stops, bad checkpoints, batches, `runs`."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from blogml.cli.main import cli
from blogml.runners import checkpoint as ckpt
from blogml.runners.events import read_events
from blogml.runners.optbench.runner import OptbenchRunner
from tests.conftest import write_config

pytestmark = [pytest.mark.slow, pytest.mark.backend_neutral]


def train(*args: str):
    return CliRunner().invoke(cli, ["train", *args], catch_exceptions=False)


def test_a_run_writes_the_whole_run_directory_and_eval_scores_it(in_tmp):
    config = write_config(in_tmp, train={"epochs": 2, "eval_every": 8, "log_every": 4})
    result = train(str(config))
    assert result.exit_code == 0, result.output
    run = in_tmp / "runs" / "tiny"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == 32 == summary["total_steps"]
    assert summary["versions"]["keras"] == keras.__version__
    assert summary["versions"]["backend"] == keras.backend.backend()
    events = read_events(run / "metrics.jsonl")
    assert [e["step"] for e in events if e["event"] == "train"] == list(range(4, 33, 4))
    val = [e for e in events if e["event"] == "val"]
    assert [e["step"] for e in val] == [8, 16, 24, 32]
    best = max(val, key=lambda e: e["accuracy"])
    assert summary["best"] == {"metric": "val_accuracy", "value": best["accuracy"],
                               "step": best["step"]}
    assert {p.name for p in (run / "plots").iterdir()} == {"loss.png", "accuracy.png"}
    assert any((run / "tensorboard").iterdir())

    # eval --checkpoint best reproduces the best validation accuracy, and agrees with a
    # NumPy computation of the accuracy from the model's own logits.
    result = CliRunner().invoke(cli, ["eval", str(run), "--split", "val"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output.strip().splitlines()[-1])
    assert scored["step"] == best["step"]
    assert scored["accuracy"] == pytest.approx(best["accuracy"], abs=1e-6)
    assert json.loads((run / "eval_val.json").read_text()) == scored

    from blogml.runners.building import build_runner, config_from_run_dir
    from blogml.runners.rundir import RunDir

    runner = build_runner(config_from_run_dir(str(run)), RunDir(run))
    runner.restore(ckpt.load_checkpoint(run / "checkpoints" / "best"))
    x, y = runner.splits_data["val"]
    logits = keras.ops.convert_to_numpy(runner.model(x, training=False))
    assert scored["accuracy"] == pytest.approx(np.mean(np.argmax(logits, 1) == y), abs=1e-6)


def test_nan_loss_fails_the_run_and_keeps_the_last_good_checkpoint(in_tmp, monkeypatch):
    # tanh passes a NaN input on (relu may map it to 0), so the loss itself becomes NaN.
    config = write_config(in_tmp, model={"activation": "tanh"},
                          train={"epochs": 2, "checkpoint_every": 5, "eval_every": 100})
    real_batches = OptbenchRunner.train_batches

    def poisoned(self, start_step):
        for step, (x, y) in enumerate(real_batches(self, start_step), start=start_step + 1):
            if step == 8:
                x = x.copy()
                x[0, 0] = np.nan
            yield x, y

    monkeypatch.setattr(OptbenchRunner, "train_batches", poisoned)
    result = train(str(config))
    assert result.exit_code == 1
    run = in_tmp / "runs" / "tiny"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "loss is nan at step 8" in summary["message"]
    last = ckpt.load_checkpoint(run / "checkpoints" / "last")
    assert last.meta["loop"]["step"] == 5
    assert all(np.all(np.isfinite(v)) for _, v in last.groups["model"] if v.dtype.kind == "f")
    assert "failed" in result.output


def test_resume_from_a_corrupt_checkpoint_is_a_clear_error(in_tmp):
    config = write_config(in_tmp, train={"epochs": 1})
    assert train(str(config)).exit_code == 0
    run = in_tmp / "runs" / "tiny"
    summary = json.loads((run / "summary.json").read_text())
    summary["status"] = "interrupted"
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "checkpoints" / "last" / "checkpoint.h5").write_bytes(b"not an hdf5 file")
    result = train("--run-dir", str(run), "--resume")
    assert result.exit_code == 2
    assert "checkpoint is corrupt or unreadable" in result.output
    assert "Traceback" not in result.output

    result = CliRunner().invoke(cli, ["eval", str(run), "--checkpoint", str(in_tmp / "nope")])
    assert result.exit_code == 2 and "checkpoint not found" in result.output


def test_one_failing_config_does_not_stop_the_others(in_tmp):
    good = write_config(in_tmp, "good", train={"epochs": 1})
    # A learning rate of 1e30 sends the weights to infinity: the loss is no longer finite.
    bad = write_config(in_tmp, "bad", optimizer={"name": "sgd", "learning_rate": 1e30},
                       train={"epochs": 1})
    result = train(str(bad), str(good))
    assert result.exit_code == 1
    table = result.output[result.output.index("config"):]
    assert "failed" in table.splitlines()[2] and "finished" in table.splitlines()[3]
    assert json.loads((in_tmp / "runs/good/summary.json").read_text())["status"] == "finished"
    listed = CliRunner().invoke(cli, ["runs"]).output.splitlines()
    assert listed[2].split()[:3] == ["runs/bad", "optbench", "failed"]
    assert listed[3].split()[:4] == ["runs/good", "optbench", "finished", "16/16"]

    # --stop-on-error: the first failure ends the study; the rest is listed, not started.
    result = train(str(bad), str(good), "--stop-on-error", "--set", "run_dir=again/{config}")
    assert result.exit_code == 1
    table = result.output[result.output.index("config"):].splitlines()
    assert "failed" in table[2] and "not started" in table[3]
    assert not (in_tmp / "again/good").exists()


def test_existing_run_dir_is_never_overwritten_without_resume(in_tmp):
    config = write_config(in_tmp, train={"epochs": 1})
    assert train(str(config)).exit_code == 0
    result = train(str(config), "--run-dir", "runs/tiny")
    assert result.exit_code == 2 and "already holds a run; pass --resume" in result.output
    result = train(str(config), "--resume")  # finished: nothing to do
    assert result.exit_code == 0 and "skipped (already finished)" in result.output


def test_resume_finds_a_run_made_before_config_keys_were_added(in_tmp):
    """A run made by an older blogml lacks keys added since (with defaults): `--resume`
    with the same config still finds it, instead of starting a new run."""
    config = write_config(in_tmp, train={"epochs": 1})
    assert train(str(config)).exit_code == 0
    stored = in_tmp / "runs/tiny/config.yaml"
    old = yaml.safe_load(stored.read_text())
    del old["distribution"], old["train"]["mixed_precision"]
    stored.write_text(yaml.safe_dump(old))
    result = train(str(config), "--resume")
    assert result.exit_code == 0 and "skipped (already finished)" in result.output
    assert sorted(p.name for p in (in_tmp / "runs").iterdir()) == ["tiny"]


def test_runs_lists_finished_failed_and_interrupted_runs(in_tmp, monkeypatch):
    runs = in_tmp / "runs"
    for name, status, extra in [("a_finished", "finished", {}), ("b_failed", "failed", {}),
                                ("c_interrupted", "interrupted", {}),
                                # SIGKILLed: still says running, but its process is gone
                                ("d_killed", "running", {"pid": 2 ** 22 + 12345})]:
        folder = runs / name
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text("task: optbench\n")
        import socket

        (folder / "summary.json").write_text(json.dumps({
            "status": status, "step": 10, "total_steps": 20, "host": socket.gethostname(),
            "best": {"metric": "val_accuracy", "value": 0.5}, "wall_seconds": 65, **extra}))
    result = CliRunner().invoke(cli, ["runs", str(runs)])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[2:]}
    assert rows[str(runs / "a_finished")][2] == "finished"
    assert rows[str(runs / "b_failed")][2] == "failed"
    assert rows[str(runs / "c_interrupted")][2] == "interrupted"
    assert rows[str(runs / "d_killed")][2] == "interrupted"
    assert rows[str(runs / "a_finished")][3:] == ["10/20", "val_accuracy=0.5", "1m05s"]


def test_runs_filters_by_task_and_status_and_sorts_by_metric_or_best(in_tmp):
    runs = in_tmp / "runs"
    for name, task, status, best, psnr, mode in [
            ("v1", "vqvae", "finished", 21.0, 21.0, "max"),
            ("v2", "vqvae", "finished", 25.5, 25.0, "max"),
            ("v3", "vqvae", "failed", None, None, "max"),
            ("o1", "optbench", "finished", 0.3, None, "min"),
            ("o2", "optbench", "finished", 0.1, None, "min")]:
        folder = runs / name
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(f"task: {task}\ntrain: {{monitor_mode: {mode}}}\n")
        (folder / "summary.json").write_text(json.dumps({
            "status": status, "step": 5, "total_steps": 5, "wall_seconds": 3,
            "best": {"metric": "val_x", "value": best},
            "final": {"val": {"psnr": psnr} if psnr is not None else {}}}))

    def listed(*args):
        result = CliRunner().invoke(cli, ["runs", str(runs), *args])
        assert result.exit_code == 0, result.output
        return [line.split() for line in result.output.splitlines()[2:]]

    rows = listed("--task", "vqvae", "--metric", "val_psnr", "--sort", "val_psnr")
    assert [Path(r[0]).name for r in rows] == ["v2", "v1", "v3"]  # highest first, none last
    assert [r[-1] for r in rows] == ["25", "21", "-"]
    rows = listed("--task", "optbench", "--sort", "best")  # min mode: lowest loss first
    assert [Path(r[0]).name for r in rows] == ["o2", "o1"]
    rows = listed("--task", "vqvae", "--sort", "best", "--status", "finished")
    assert [Path(r[0]).name for r in rows] == ["v2", "v1"]  # max mode: highest first
    assert [Path(r[0]).name for r in listed("--sort", "best", "--reverse",
                                            "--task", "optbench")] == ["o1", "o2"]
    result = CliRunner().invoke(cli, ["runs", str(runs), "--sort", "psnr"])
    assert result.exit_code == 2 and "given with --metric" in result.output
