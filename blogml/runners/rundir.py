"""The run directory (README: What a run leaves behind): where everything a run produces lives.

    RUN_DIR/config.yaml          resolved config
    RUN_DIR/metrics.jsonl        one JSON line per log/eval event
    RUN_DIR/checkpoints/{last,best}/checkpoint.h5
    RUN_DIR/tensorboard/         TensorBoard event files
    RUN_DIR/samples/, plots/     PNGs
    RUN_DIR/summary.json         status, best/final metrics, timings, versions
    RUN_DIR/train.log            the log, as printed
    RUN_DIR/.lock                held while a process trains in it (see blogml.locks)

This module knows names and small JSON/YAML files only; it never imports Keras.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import yaml

from blogml.config.loader import LoadedConfig
from blogml.config.sweep import label
from blogml.errors import RunDirError

STATUSES = ("running", "finished", "failed", "interrupted")


def write_text_atomic(path: Path, text: str) -> None:
    """Write a small file so that a reader sees the old or the new content, never half."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:  # a full disk, a read-only folder: name the file, not its temp
        tmp.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror, str(path)) from error
    except BaseException:  # a signal: no half-written temp file left behind
        tmp.unlink(missing_ok=True)
        raise


class RunDir:
    """Paths and small-file I/O of one run directory."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    config = property(lambda self: self.path / "config.yaml")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    summary_path = property(lambda self: self.path / "summary.json")
    log = property(lambda self: self.path / "train.log")
    checkpoints = property(lambda self: self.path / "checkpoints")
    tensorboard = property(lambda self: self.path / "tensorboard")
    plots = property(lambda self: self.path / "plots")
    samples = property(lambda self: self.path / "samples")
    lock = property(lambda self: self.path / ".lock")  # held by the process training it

    def checkpoint(self, name: str) -> Path:
        """`checkpoints/<name>/` (name: last or best)."""
        return self.checkpoints / name

    def is_run(self) -> bool:
        return self.config.is_file()

    def create(self) -> None:
        for folder in (self.path, self.checkpoints, self.tensorboard, self.plots):
            folder.mkdir(parents=True, exist_ok=True)

    def read_config(self) -> dict[str, Any]:
        if not self.is_run():
            raise RunDirError(f"{self.path}: not a run directory (no config.yaml)")
        with open(self.config, encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}

    def read_summary(self) -> dict[str, Any] | None:
        """summary.json, or None when there is none yet or it is not a JSON object."""
        try:
            with open(self.summary_path, encoding="utf-8") as handle:
                summary = json.load(handle)
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return summary if isinstance(summary, dict) else None

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_text_atomic(self.summary_path, json.dumps(summary, indent=2, sort_keys=False) + "\n")


def process_alive(summary: dict[str, Any]) -> bool:
    """Whether the process that wrote a `running` summary still runs (same host only)."""
    if summary.get("host") != socket.gethostname():
        return True  # cannot tell from here; trust the file
    pid = summary.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(summary: dict[str, Any] | None) -> str:
    """The status to show: a `running` run whose process died was killed (e.g. SIGKILL)."""
    if summary is None:
        return "interrupted"  # created but killed before its first summary
    status = summary.get("status", "interrupted")
    if status == "running" and not process_alive(summary):
        return "interrupted"
    return status


def format_run_dir(loaded: LoadedConfig, when: str) -> str:
    """The `run_dir` template of a config filled in; `when` is the `{time}` of the run."""
    values = loaded.values
    return values["run_dir"].format(task=values["task"], time=when, config=loaded.name,
                                    seed=values["seed"], sweep=label(loaded.point))
