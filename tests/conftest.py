"""Shared helpers: tiny configs written to tmp dirs, and the CLI run in or out of process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from blogml.data.wordpiece import CHINESE_VOCAB

REPO = Path(__file__).resolve().parent.parent
VOCAB = CHINESE_VOCAB  # the real Chinese BERT vocab, shipped with blogml


def tiny_config(**sections: Any) -> dict[str, Any]:
    """A small optbench config (seconds to train); `sections` update its sections."""
    config: dict[str, Any] = {
        "task": "optbench",
        "seed": 1,
        "run_dir": "runs/{config}",
        "data": {"num_train": 512, "num_val": 128, "num_test": 128, "num_features": 8,
                 "num_classes": 4},
        "model": {"hidden_units": [16], "dropout": 0.1},
        "optimizer": {"name": "adam", "learning_rate": 1.0e-2},
        "train": {"epochs": 2, "batch_size": 32, "log_every": 1, "eval_every": 8},
    }
    for name, values in sections.items():
        if isinstance(values, dict) and isinstance(config.get(name), dict):
            config[name] = {**config[name], **values}
        else:
            config[name] = values
    return config


def write_config(folder: Path, name: str = "tiny", **sections: Any) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tiny_config(**sections), sort_keys=False))
    return path


def cli_env() -> dict[str, str]:
    env = dict(os.environ, CI="true", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("KERAS_BACKEND", None)
    return env


def run_blogml(args: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess:
    """`blogml ARGS` in a subprocess (as a user types it), output captured."""
    return subprocess.run([sys.executable, "-m", "blogml", *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside an empty temporary folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "true")
    return tmp_path


def _blogml_in_process(*args: str) -> None:
    from click.testing import CliRunner

    from blogml.cli.main import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HDF5 cache (64 px) of 120 synthetic faces written in the CelebA layout."""
    root = tmp_path_factory.mktemp("faces")
    _blogml_in_process("data", "synth", "celeba", "--out", str(root / "src"), "--count", "120")
    _blogml_in_process("data", "prepare", "celeba", "--src", str(root / "src"), "--out",
                       str(root / "faces64.h5"))
    return root / "faces64.h5"


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic NL2SQL data in the competition layout (160 train, 40 val, 20 test)."""
    root = tmp_path_factory.mktemp("nl2sql")
    _blogml_in_process("data", "synth", "nl2sql", "--out", str(root), "--train", "160",
                       "--val", "40", "--test", "20")
    return root


def signalling_batches(real: Any, stop_step: int) -> Any:
    """A runner's `train_batches` (`real`) that sends the process a real SIGTERM while a
    fresh run trains step `stop_step` (a resumed run, which starts later, is left alone)."""
    def signalling(self, start_step):
        for step, batch in enumerate(real(self, start_step), start=start_step + 1):
            if step == stop_step and start_step == 0:
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    return signalling


def sigterm_at(monkeypatch: pytest.MonkeyPatch, runner_class: type, stop_step: int) -> None:
    """Make a fresh run of `runner_class` get a real SIGTERM while training step `stop_step`."""
    monkeypatch.setattr(runner_class, "train_batches",
                        signalling_batches(runner_class.train_batches, stop_step))


def assert_same_checkpoint(a: Path, b: Path, atol: float) -> None:
    """Model and optimizer variables of two checkpoints equal within `atol`."""
    import numpy as np

    from blogml.runners import checkpoint as ckpt

    first, second = ckpt.load_checkpoint(a), ckpt.load_checkpoint(b)
    for group in ("model", "optimizer"):
        assert [p for p, _ in first.groups[group]] == [p for p, _ in second.groups[group]]
        for (path, x), (_, y) in zip(first.groups[group], second.groups[group]):
            np.testing.assert_allclose(x, y, atol=atol, rtol=0, err_msg=f"{group} {path}")
