"""Faults outside blogml: full disks, read-only folders, a second process on the same run
dir or cache, crashes during setup, a second stop signal. Each ends in one line naming the
path (exit 1 for a run that failed, 2 for bad input), never a traceback, nothing lost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blogml.runners.optbench.runner import OptbenchRunner
from tests.bad_inputs.harness import assert_refused, invoke, needs_unprivileged, spawn
from tests.conftest import cli_env, sigterm_at, write_config

pytestmark = pytest.mark.slow


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


needs_tmpfs = pytest.mark.skipif(
    not _can_mount_tmpfs(),
    reason="cannot mount a small tmpfs here (needs user and mount namespaces)")


def _steps(run: Path, event: str = "train") -> list[int]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [e["step"] for e in map(json.loads, lines) if e["event"] == event]


def _checkpoint_step(run: Path, name: str = "last") -> int:
    from blogml.runners import checkpoint as ckpt

    return ckpt.load_checkpoint(run / "checkpoints" / name).meta["loop"]["step"]


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name or p.name.endswith(".partial")]


def _in_small_disk(folder: Path, size: str, script: str) -> subprocess.CompletedProcess:
    """Run `script` (sh) in `folder` with `folder/runs` a fresh tmpfs of `size`; the
    tmpfs lives only as long as the script, so the script copies out what to inspect."""
    blogml = f"{sys.executable} -m blogml"
    body = f"mount -t tmpfs -o size={size} tmpfs runs && " + script.replace("BLOGML", blogml)
    return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", body],
                          cwd=folder, env=cli_env(), capture_output=True, text=True,
                          timeout=600)


@needs_tmpfs
def test_a_full_disk_stops_the_run_with_its_last_checkpoint_and_resume_finishes(in_tmp):
    """A checkpoint of 0.8 MiB on a 1.8 MiB disk: `last` fits, then `best` does not."""
    config = write_config(in_tmp, "big", run_dir="runs/big", model={"hidden_units": [256, 256]},
                          train={"epochs": 4})
    (in_tmp / "runs").mkdir()
    done = _in_small_disk(in_tmp, "1800k", f"""
        BLOGML train {config.name} > full.txt 2>&1; echo $? > full.exit
        cp -r runs after_full
        mount -o remount,size=8m runs
        BLOGML train --run-dir runs/big --resume > resumed.txt 2>&1; echo $? > resumed.exit
        cp -r runs after_resume""")
    assert done.returncode == 0, done.stderr
    full = (in_tmp / "full.txt").read_text()
    assert (in_tmp / "full.exit").read_text().strip() == "1", full
    assert "Traceback" not in full and "No space left on device" in full
    assert "runs/big/checkpoints/" in full and "resume with --resume" in full
    run = in_tmp / "after_full" / "big"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "No space left on device" in summary["message"]
    assert _temp_files(in_tmp / "after_full") == []
    assert 0 < _checkpoint_step(run) <= summary["step"] < summary["total_steps"]

    resumed = (in_tmp / "resumed.txt").read_text()
    assert (in_tmp / "resumed.exit").read_text().strip() == "0", resumed
    run = in_tmp / "after_resume" / "big"
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"
    steps = _steps(run)
    assert steps == list(range(1, summary["total_steps"] + 1))  # each step once


@needs_tmpfs
def test_a_disk_full_before_the_first_write_leaves_no_run_dir(in_tmp):
    config = write_config(in_tmp, "tiny", run_dir="runs/tiny")
    (in_tmp / "runs").mkdir()
    done = _in_small_disk(in_tmp, "64k", f"""
        head -c 1000000 /dev/zero > runs/filler 2>/dev/null
        BLOGML train {config.name} > out.txt 2>&1; echo $? > out.exit
        ls -a runs > listing.txt""")
    assert done.returncode == 0, done.stderr
    output = (in_tmp / "out.txt").read_text()
    assert (in_tmp / "out.exit").read_text().strip() == "1", output
    assert "Traceback" not in output and "No space left on device" in output
    assert "runs/tiny" in output
    assert (in_tmp / "listing.txt").read_text().split() == [".", "..", "filler"]


@needs_unprivileged
def test_a_read_only_runs_folder_is_refused_before_anything_starts(open_tmp, unchanged):
    config = write_config(open_tmp, "tiny", run_dir="locked/{config}")
    locked = open_tmp / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    unchanged.append(locked)
    outcome = spawn("train", config.name, cwd=open_tmp, unprivileged=True)
    assert_refused(outcome, 2, "locked/tiny", "Permission denied", "writable")


@needs_unprivileged
def test_resuming_a_read_only_run_dir_is_refused_and_leaves_it_as_it_was(open_tmp, unchanged,
                                                                          monkeypatch):
    config = write_config(open_tmp, "tiny", run_dir="runs/tiny", train={"epochs": 2})
    sigterm_at(monkeypatch, OptbenchRunner, 5)
    assert invoke("train", str(config)).exit_code == 130
    run = open_tmp / "runs" / "tiny"
    for path in [run, *run.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    unchanged.append(run)
    outcome = spawn("train", "--run-dir", "runs/tiny", "--resume", cwd=open_tmp,
                    unprivileged=True)
    assert_refused(outcome, 2, "runs/tiny", "Permission denied")


@needs_unprivileged
def test_eval_of_a_read_only_run_prints_its_metrics_then_names_what_it_could_not_write(
        open_tmp, unchanged):
    config = write_config(open_tmp, "tiny", run_dir="runs/tiny", train={"epochs": 1})
    assert invoke("train", str(config)).exit_code == 0
    run = open_tmp / "runs" / "tiny"
    for path in [run, *run.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    unchanged.append(run)
    outcome = spawn("eval", "runs/tiny", cwd=open_tmp, unprivileged=True)
    assert_refused(outcome, 2, "runs/tiny/eval_val.json", "Permission denied")
    metrics = json.loads(outcome.output.splitlines()[0])
    assert metrics["split"] == "val" and 0.0 <= metrics["accuracy"] <= 1.0


def _wait_for_lock(lock: Path, process: subprocess.Popen, timeout: float = 120) -> dict:
    """The holder recorded in `lock` once `process` holds it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            holder = json.loads(lock.read_text() or "{}")
        except (FileNotFoundError, json.JSONDecodeError):
            holder = {}
        if holder.get("pid") == process.pid:
            return holder
        time.sleep(0.05)
    raise AssertionError(f"{lock} never held by pid {process.pid}")


def _wait_until(condition, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    time.sleep(0.2)


def _popen(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "blogml", *args], cwd=cwd, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_second_resume_of_a_run_being_resumed_is_refused_with_the_holder(in_tmp,
                                                                          monkeypatch):
    config = write_config(in_tmp, "long", run_dir="runs/long",
                          data={"num_train": 4096}, train={"epochs": 40, "log_every": 16})
    sigterm_at(monkeypatch, OptbenchRunner, 3)
    assert invoke("train", str(config)).exit_code == 130
    run = in_tmp / "runs" / "long"
    first = _popen("train", "--run-dir", str(run), "--resume", cwd=in_tmp)
    try:
        _wait_for_lock(run / ".lock", first)
        second = spawn("train", "--run-dir", str(run), "--resume", cwd=in_tmp)
        assert_refused(second, 2, str(run), f"pid {first.pid}", socket.gethostname())
        _wait_until(lambda: json.loads((run / "summary.json").read_text())["pid"] == first.pid,
                    first)  # training, with its stop handlers in place
        first.send_signal(signal.SIGTERM)
        output, _ = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 130, output
    steps = _steps(run)
    assert steps == sorted(set(steps))  # one writer: each step once, in order
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"


def test_a_lock_left_by_a_dead_process_does_not_block(in_tmp, monkeypatch):
    config = write_config(in_tmp, "tiny", run_dir="runs/tiny", train={"epochs": 1})
    sigterm_at(monkeypatch, OptbenchRunner, 3)
    assert invoke("train", str(config)).exit_code == 130
    run = in_tmp / "runs" / "tiny"
    (run / ".lock").write_text(json.dumps({"pid": 2 ** 22 + 1, "host": socket.gethostname()}))
    outcome = spawn("train", "--run-dir", str(run), "--resume", cwd=in_tmp)
    assert outcome.exit_code == 0, outcome.output
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"
    assert not (run / ".lock").exists()  # released with the process


@pytest.fixture(scope="module")
def many_faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough CelebA-layout images that converting them takes a few seconds."""
    root = tmp_path_factory.mktemp("many_faces")
    done = spawn("data", "synth", "celeba", "--out", str(root), "--count", "1200", cwd=root)
    assert done.exit_code == 0, done.output
    return root


def test_a_second_prepare_to_the_same_file_is_refused_and_the_first_completes(in_tmp,
                                                                             many_faces):
    out = in_tmp / "faces.h5"
    args = ("data", "prepare", "celeba", "--src", str(many_faces), "--out", str(out))
    first = _popen(*args, cwd=in_tmp)
    try:
        _wait_for_lock(in_tmp / "faces.h5.lock", first)
        second = spawn(*args, cwd=in_tmp)
        assert_refused(second, 2, str(out), f"pid {first.pid}", socket.gethostname())
        output, _ = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, output
    from blogml.data.celeba import read_prepared

    assert sum(read_prepared(out).counts.values()) == 1200
    assert sorted(p.name for p in in_tmp.iterdir()) == ["faces.h5"]  # no partial, no lock


def test_a_crash_while_building_leaves_no_run_dir(in_tmp, monkeypatch):
    def broken(self):
        raise RuntimeError("a bug in task code")

    monkeypatch.setattr(OptbenchRunner, "build_model", broken)
    config = write_config(in_tmp, "tiny", run_dir="runs/tiny")
    outcome = invoke("train", str(config))
    assert outcome.exit_code == 1 and outcome.crashed is None
    assert "setup crashed: RuntimeError: a bug in task code" in outcome.output
    assert not (in_tmp / "runs" / "tiny").exists()


def test_a_crash_after_the_first_checkpoint_leaves_the_run_failed_with_it(in_tmp, monkeypatch):
    real = OptbenchRunner.train_batches

    def failing(self, start_step):
        for step, batch in enumerate(real(self, start_step), start=start_step + 1):
            if step == 21:
                raise OSError(28, "No space left on device", "runs/tiny/data")
            yield batch

    monkeypatch.setattr(OptbenchRunner, "train_batches", failing)
    config = write_config(in_tmp, "tiny", run_dir="runs/tiny", train={"epochs": 2})
    outcome = invoke("train", str(config))
    assert outcome.exit_code == 1 and outcome.crashed is None, outcome.output
    run = in_tmp / "runs" / "tiny"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["step"] == 20
    assert "runs/tiny/data: No space left on device" in summary["message"]
    assert _checkpoint_step(run) == 16  # the end of epoch 1, as it was written
    assert "Traceback" not in (run / "train.log").read_text()


def test_a_second_stop_while_plotting_exits_130_with_the_summary_written(in_tmp, monkeypatch):
    import blogml.runners.base as base

    def plotting_stopped(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # the second stop request of this run
        raise AssertionError("the second SIGTERM should have interrupted the plots")

    monkeypatch.setattr(base, "plot_curves", plotting_stopped)
    sigterm_at(monkeypatch, OptbenchRunner, 5)
    config = write_config(in_tmp, "tiny", run_dir="runs/tiny")
    outcome = invoke("train", str(config))
    assert outcome.exit_code == 130 and outcome.crashed is None, outcome.output
    assert "plots skipped: interrupted" in outcome.output
    summary = json.loads((in_tmp / "runs" / "tiny" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["step"] == 5


@pytest.mark.parametrize("args, named", [
    (["data", "synth", "celeba", "--out", "afile", "--count", "2"], "afile"),
    (["data", "synth", "nl2sql", "--out", "afile"], "afile"),
    (["data", "prepare", "celeba", "--src", "faces", "--out", "afile/x.h5"], "afile"),
])
def test_an_output_path_through_an_existing_file_is_refused(in_tmp, unchanged, args, named):
    from PIL import Image

    (in_tmp / "afile").write_text("keep me\n")
    (in_tmp / "faces").mkdir()
    Image.new("RGB", (80, 80), (200, 150, 120)).save(in_tmp / "faces" / "one.jpg")
    unchanged.append(in_tmp / "afile")
    outcome = invoke(*args)
    assert_refused(outcome, 2, named)
    assert sorted(p.name for p in in_tmp.iterdir()) == ["afile", "faces"]


def test_a_run_dir_template_through_a_file_is_refused_before_training(in_tmp, unchanged):
    (in_tmp / "afile").write_text("keep me\n")
    unchanged.append(in_tmp / "afile")
    config = write_config(in_tmp, "tiny", run_dir="afile/{config}")
    assert_refused(invoke("train", str(config)), 2, "afile")


def test_a_stop_during_setup_ends_the_run_before_its_first_step_and_leaves_no_dir(
        in_tmp, monkeypatch):
    real = OptbenchRunner.build_model

    def stopped_while_building(self):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(self)

    monkeypatch.setattr(OptbenchRunner, "build_model", stopped_while_building)
    config = write_config(in_tmp, "tiny", run_dir="runs/tiny")
    outcome = invoke("train", str(config))
    assert outcome.exit_code == 130 and outcome.crashed is None, outcome.output
    assert "interrupted" in outcome.output
    assert not (in_tmp / "runs" / "tiny").exists()
