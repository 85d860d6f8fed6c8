"""A study (several configs in one command) survives a SIGKILL: the same command again
finishes the killed run from its checkpoint and skips the finished ones."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from blogml.runners import checkpoint as ckpt
from blogml.runners.events import read_events
from tests.conftest import cli_env, run_blogml, write_config
from tests.test_resume import wait_for_step

pytestmark = pytest.mark.slow

LONG = {"epochs": 20, "batch_size": 32, "log_every": 1, "eval_every": 40,
        "checkpoint_every": 25}  # 320 steps; checkpoints every 25 and at each epoch's end


def test_rerunning_a_killed_study_resumes_the_killed_run_and_skips_finished_ones(tmp_path):
    configs = [write_config(tmp_path, "a", run_dir="runs/{config}", train={"epochs": 2}),
               write_config(tmp_path, "b", run_dir="runs/{config}", train=LONG),
               write_config(tmp_path, "c", run_dir="runs/{config}", train={"epochs": 2})]
    command = ["train", *(str(c) for c in configs), "--resume"]
    process = subprocess.Popen([sys.executable, "-m", "blogml", *command], cwd=tmp_path,
                               env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "runs/b/metrics.jsonl").is_file():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    wait_for_step(tmp_path / "runs/b/metrics.jsonl", 110, process)
    process.kill()  # SIGKILL: no checkpoint, no summary, nothing but what is on disk
    process.communicate(timeout=60)
    finished_record = (tmp_path / "runs/a/metrics.jsonl").read_bytes()
    killed = json.loads((tmp_path / "runs/b/summary.json").read_text())
    assert killed["status"] == "running"  # as the kill left it; `runs` shows interrupted
    assert not (tmp_path / "runs/c").exists()
    checkpointed = ckpt.load_checkpoint(tmp_path / "runs/b/checkpoints/last").meta["loop"]["step"]
    assert checkpointed >= 100  # (summary.json is written just after each checkpoint)

    rerun = run_blogml(command, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    table = {line.split()[0]: line for line in rerun.stdout.splitlines()[2:]}
    assert "skipped (already finished)" in table[str(configs[0])]
    assert "finished" in table[str(configs[1])] and "finished" in table[str(configs[2])]
    assert f"resuming runs/b at step {checkpointed}" in rerun.stderr
    assert (tmp_path / "runs/a/metrics.jsonl").read_bytes() == finished_record  # not rerun
    train_steps = [e["step"] for e in read_events(tmp_path / "runs/b/metrics.jsonl")
                   if e["event"] == "train"]
    assert train_steps == list(range(1, 321))  # none lost, none twice
    for name in "bc":
        assert json.loads((tmp_path / f"runs/{name}/summary.json").read_text())["status"] == \
            "finished"
