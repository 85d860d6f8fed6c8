"""Exact resume after a real SIGTERM: same final weights, optimizer state and metrics record."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from blogml.runners import checkpoint as ckpt
from blogml.runners.events import read_events
from tests.conftest import REPO, cli_env, run_blogml, write_config

pytestmark = pytest.mark.slow

SECTIONS = dict(
    data={"num_train": 2048, "num_val": 128, "num_test": 128, "num_features": 8,
          "num_classes": 4},
    model={"hidden_units": [32, 32], "dropout": 0.2},  # dropout: RNG state must resume too
    train={"epochs": 30, "batch_size": 16, "log_every": 1, "eval_every": 250,
           "checkpoint_every": 1000},
)
TOTAL = 30 * 2048 // 16


def wait_for_step(metrics, step: int, process, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be interrupted"
        events = read_events(metrics)
        if events and events[-1]["step"] >= step:
            return
        time.sleep(0.02)
    raise TimeoutError(f"step {step} not reached")


def test_sigterm_then_resume_equals_an_uninterrupted_run(tmp_path):
    config = write_config(tmp_path, "resume", run_dir="runs/{config}-{time}", **SECTIONS)
    straight = run_blogml(["train", str(config), "--run-dir", "straight"], tmp_path)
    assert straight.returncode == 0, straight.stderr

    process = subprocess.Popen([sys.executable, "-m", "blogml", "train", str(config)],
                               cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("runs/resume-*/metrics.jsonl")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    (run_dir,) = tmp_path.glob("runs/resume-*")
    wait_for_step(run_dir / "metrics.jsonl", 300, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    stopped_at = summary["step"]
    assert summary["status"] == "interrupted" and 300 <= stopped_at < TOTAL
    saved = ckpt.load_checkpoint(run_dir / "checkpoints" / "last")
    assert saved.meta["loop"]["step"] == stopped_at  # the stop itself was checkpointed

    # The same command plus --resume finds the run by its config and continues it.
    resumed = run_blogml(["train", str(config), "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run_dir.relative_to(tmp_path)} at step {stopped_at}" in resumed.stderr
    assert len(list(tmp_path.glob("runs/*"))) == 1  # no second run was started

    a = ckpt.load_checkpoint(tmp_path / "straight" / "checkpoints" / "last")
    b = ckpt.load_checkpoint(run_dir / "checkpoints" / "last")
    assert a.meta["loop"]["step"] == b.meta["loop"]["step"] == TOTAL
    for group in ("model", "optimizer"):
        assert [p for p, _ in a.groups[group]] == [p for p, _ in b.groups[group]]
        for (path, x), (_, y) in zip(a.groups[group], b.groups[group]):
            np.testing.assert_allclose(x, y, atol=1e-6, rtol=0, err_msg=f"{group} {path}")

    def record(run):
        return [(e["event"], e["step"], e["loss"]) for e in read_events(run / "metrics.jsonl")]
    straight_record, resumed_record = record(tmp_path / "straight"), record(run_dir)
    train_steps = [step for event, step, _ in resumed_record if event == "train"]
    assert train_steps == list(range(1, TOTAL + 1))  # none missing, none twice
    assert [(e, s) for e, s, _ in resumed_record] == [(e, s) for e, s, _ in straight_record]
    np.testing.assert_allclose([v for *_, v in resumed_record], [v for *_, v in straight_record],
                               atol=1e-6)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"


# `blogml ARGS` as typed, plus two things a test needs from inside the process: a real
# SIGTERM while a fresh run trains step $STOP_AT_STEP (conftest.signalling_batches), and the
# Keras backend the process ended on, reported on stderr. Both hook in lazily: importing
# Keras here would pick its backend before the run's config does.
OBSERVED_BLOGML = """
import atexit, os, sys

sys.path.insert(0, {repo!r})  # the script runs in a tmp folder; tests/ is imported from here
from blogml.cli.main import cli
from blogml.tasks.registry import Task
from tests.conftest import signalling_batches

stop_at = int(os.environ.get("STOP_AT_STEP", "0"))
real_runner_class = Task.runner_class


def runner_class(self):
    found = real_runner_class(self)
    if stop_at and not getattr(found, "stopping", False):
        found.train_batches = signalling_batches(found.train_batches, stop_at)
        found.stopping = True
    return found


def report():
    keras = sys.modules.get("keras")
    print("keras backend:", keras.backend.backend() if keras else None, file=sys.stderr)


Task.runner_class = runner_class
atexit.register(report)
cli(sys.argv[1:], prog_name="blogml")
"""


def observed_blogml(folder, *args: str, stop_at: int = 0) -> subprocess.CompletedProcess:
    script = folder / "observed_blogml.py"
    script.write_text(OBSERVED_BLOGML.format(repo=str(REPO)))
    env = dict(cli_env(), STOP_AT_STEP=str(stop_at))  # cli_env: no KERAS_BACKEND
    return subprocess.run([sys.executable, str(script), *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)


def backend_of(process: subprocess.CompletedProcess) -> str:
    return process.stderr.strip().splitlines()[-1].removeprefix("keras backend: ")


def test_eval_and_resume_use_the_backend_of_the_run(tmp_path):
    """A run trained on JAX is resumed and scored on JAX: Keras is imported only after the
    run's config has set KERAS_BACKEND (a TensorFlow import first would make that
    impossible), in each of the three processes."""
    config = write_config(tmp_path, "on_jax", backend="jax", train={"epochs": 2})
    run = tmp_path / "runs/on_jax"
    first = observed_blogml(tmp_path, "train", str(config), stop_at=10)
    assert first.returncode == 130, first.stderr
    assert backend_of(first) == "jax"
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["status"], summary["step"]) == ("interrupted", 10)
    assert summary["versions"]["backend"] == "jax"
    assert ckpt.load_checkpoint(run / "checkpoints/last").meta["loop"]["step"] == 10

    # Resumed from its run dir alone: the config (and backend) are the run's own.
    resumed = observed_blogml(tmp_path, "train", "--run-dir", "runs/on_jax", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming runs/on_jax at step 10 of 32" in resumed.stderr
    assert backend_of(resumed) == "jax"
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["status"], summary["step"]) == ("finished", 32)
    assert summary["versions"]["backend"] == "jax"  # what the resuming process recorded
    steps = [e["step"] for e in read_events(run / "metrics.jsonl") if e["event"] == "train"]
    assert steps == list(range(1, 33))

    scored = observed_blogml(tmp_path, "eval", "runs/on_jax", "--checkpoint", "last")
    assert scored.returncode == 0, scored.stderr
    assert backend_of(scored) == "jax"
    assert json.loads(scored.stdout)["step"] == 32
