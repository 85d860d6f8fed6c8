"""A study in parallel on a local Ray instance (`--jobs`): each concurrent run sees its own
GPUs, every run ends where it ends alone, a killed worker's run is retried from its last
checkpoint, a stopped study continues, and nothing leaves the loopback interface.

This machine has no GPU; Ray lets a local instance declare some (`--gpus-per-run 1` with
`--jobs 2` declares two), and assigns them to its workers through CUDA_VISIBLE_DEVICES as
it would real ones.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from blogml.runners.events import read_events
from tests.conftest import REPO, assert_same_checkpoint, cli_env, run_blogml, write_config
from tests.sockets import descendants, not_loopback, sockets_of
from tests.test_resume import wait_for_step

pytestmark = pytest.mark.slow

SHORT = {"epochs": 2}  # 32 steps
LONG = {"epochs": 40, "batch_size": 32, "log_every": 1, "eval_every": 40,
        "checkpoint_every": 25}  # 640 steps, a checkpoint every 25
STUDY = {"a": SHORT, "b": LONG, "c": LONG, "d": SHORT}
PARALLEL = ["--jobs", "2", "--gpus-per-run", "1"]


def _write_study(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return [str(write_config(folder, name, run_dir="runs/{config}", train=train).name)
            for name, train in STUDY.items()]


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study's configs trained one after another in one process, without Ray."""
    folder = tmp_path_factory.mktemp("alone")
    result = run_blogml(["train", *_write_study(folder)], folder)
    assert result.returncode == 0, result.stderr
    return folder


def _start(folder: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "blogml", "train", *_write_study(folder),
                             "--resume", *PARALLEL, *extra], cwd=folder, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _summary(folder: Path, name: str) -> dict | None:
    try:
        return json.loads((folder / f"runs/{name}/summary.json").read_text())
    except (OSError, ValueError):
        return None


def _assert_as_alone(folder: Path, alone: Path) -> None:
    for name in STUDY:
        assert _summary(folder, name)["status"] == "finished", name
        assert_same_checkpoint(folder / f"runs/{name}/checkpoints/last",
                               alone / f"runs/{name}/checkpoints/last", atol=1e-6)
        steps = [e["step"] for e in read_events(folder / f"runs/{name}/metrics.jsonl")
                 if e["event"] == "train"]
        assert steps == list(range(1, len(steps) + 1)) and steps, name  # each step once


class Watch(threading.Thread):
    """Polls, while a study runs: which runs are `running` at the same time (and the
    CUDA_VISIBLE_DEVICES each saw), and every socket of the process tree."""

    def __init__(self, folder: Path, process: subprocess.Popen) -> None:
        super().__init__(daemon=True)
        self.folder, self.process = folder, process
        self.together: list[dict[str, str | None]] = []
        self.sockets: set = set()
        self.pids: set[int] = set()

    def run(self) -> None:
        while self.process.poll() is None:
            pids = descendants(self.process.pid)
            self.pids |= pids
            self.sockets.update(sockets_of(pids))
            running = {name: summary["distribution"]["cuda_visible_devices"]
                       for name in STUDY if (summary := _summary(self.folder, name))
                       and summary["status"] == "running"}
            if len(running) > 1:
                self.together.append(running)
            time.sleep(0.05)


def test_four_runs_two_at_a_time_see_their_own_gpus_and_end_as_alone(tmp_path, alone):
    process = _start(tmp_path)
    watch = Watch(tmp_path, process)
    watch.start()
    out, err = process.communicate(timeout=600)
    watch.join()
    assert process.returncode == 0, err
    assert "Ray: local instance at 127.0.0.1:" in err
    _assert_as_alone(tmp_path, alone)
    assert watch.together, "no two runs trained at the same time"
    for running in watch.together:
        assert len(running) == 2 and len(set(running.values())) == 2, running
        assert set(running.values()) <= {"0", "1"}
    workers = {_summary(tmp_path, name)["pid"] for name in STUDY}
    assert len(workers) == 2  # each worker trained two runs in turn
    assert len(watch.pids) > 3 and watch.sockets  # Ray's processes were seen, with sockets
    assert not not_loopback(list(watch.sockets)), not_loopback(list(watch.sockets))


def test_a_run_whose_worker_is_killed_is_retried_from_its_checkpoint(tmp_path, alone):
    process = _start(tmp_path)
    wait_for_step(tmp_path / "runs/b/metrics.jsonl", 110, process, timeout=300)
    worker = _summary(tmp_path, "b")["pid"]
    assert worker != process.pid
    os.kill(worker, signal.SIGKILL)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert "runs/b: its worker process died; retry 1 of 1, from its last checkpoint" in err
    assert _summary(tmp_path, "b")["pid"] != worker
    with open(tmp_path / "runs/b/train.log", encoding="utf-8") as log:
        assert "resuming runs/b at step " in log.read()
    _assert_as_alone(tmp_path, alone)


def test_a_stopped_parallel_study_continues_where_it_stopped(tmp_path, alone):
    process = _start(tmp_path)
    wait_for_step(tmp_path / "runs/c/metrics.jsonl", 60, process, timeout=300)
    assert _summary(tmp_path, "a")["status"] == "finished"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    table = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "interrupted" in table["b.yaml"] and "interrupted" in table["c.yaml"]
    assert "not started" in table["d.yaml"] and not (tmp_path / "runs/d").exists()
    stopped_at = {name: _summary(tmp_path, name)["step"] for name in "bc"}
    finished_record = (tmp_path / "runs/a/metrics.jsonl").read_bytes()

    again = _start(tmp_path)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    table = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "skipped (already finished)" in table["a.yaml"]
    assert all("finished" in table[f"{name}.yaml"] for name in "bcd")
    assert (tmp_path / "runs/a/metrics.jsonl").read_bytes() == finished_record
    for name, step in stopped_at.items():
        with open(tmp_path / f"runs/{name}/train.log", encoding="utf-8") as log:
            assert f"resuming runs/{name} at step {step}" in log.read()
    _assert_as_alone(tmp_path, alone)


def test_jobs_without_ray_says_how_to_install_it(tmp_path):
    """Ray hidden from the interpreter, as if it were not installed."""
    shadow = tmp_path / "no_ray"
    shadow.mkdir()
    (shadow / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None\n")
    config = write_config(tmp_path, "a")
    env = {**cli_env(), "PYTHONPATH": f"{shadow}{os.pathsep}{REPO}"}
    result = subprocess.run([sys.executable, "-m", "blogml", "train", str(config), "--jobs",
                             "2"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert 'install it with: pip install -e ".[ray]"' in result.stderr
    assert not (tmp_path / "runs").exists()


def test_jobs_and_ray_together_are_refused(tmp_path):
    config = write_config(tmp_path, "a")
    result = run_blogml(["train", str(config), "--jobs", "2", "--ray", "auto"], tmp_path)
    assert result.returncode == 2
    assert "give one of them" in result.stderr


def test_the_socket_check_tells_loopback_from_any_interface():
    import socket

    with socket.socket() as everywhere, socket.socket() as loopback:
        everywhere.bind(("0.0.0.0", 0))
        everywhere.listen()
        loopback.bind(("127.0.0.1", 0))
        loopback.listen()
        found = sockets_of({os.getpid()})
        assert {str(s.local) for s in found if s.listening} == {"0.0.0.0", "127.0.0.1"}
        assert [str(s.local) for s in not_loopback(found)] == ["0.0.0.0"]
