"""What every bad-input case asserts: the exit code, a message that names the culprit, no
traceback, and nothing that existed before changed.

A case runs the CLI in process (`invoke`, fast: Keras is imported once per test session)
or as a user types it (`spawn`, for signals, races and file-system faults that need a
process of its own, possibly as an unprivileged user who cannot write a read-only folder).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import cli_env


@dataclass
class Outcome:
    """What one command did: its exit code and everything it printed (stdout and stderr)."""

    exit_code: int
    output: str
    crashed: BaseException | None = None  # an exception that escaped the CLI (in process)


def invoke(*args: str) -> Outcome:
    """`blogml ARGS` in this process, in the current directory."""
    from click.testing import CliRunner

    from blogml.cli.main import cli

    result = CliRunner().invoke(cli, list(args))
    crashed = result.exception if not isinstance(result.exception, SystemExit) else None
    return Outcome(result.exit_code, result.output, crashed)


def spawn(*args: str, cwd: Path | None = None, unprivileged: bool = False,
          timeout: float = 600) -> Outcome:
    """`blogml ARGS` in a subprocess; `unprivileged` runs it as a user without root's
    power to write anywhere (so a folder without write permission refuses it)."""
    command = [sys.executable, "-m", "blogml", *args]
    env = cli_env()
    if unprivileged and os.geteuid() == 0:
        command = ["unshare", "--user", "--", *command]
        env["HOME"] = env["KERAS_HOME"] = str(_world_writable_home())
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return Outcome(done.returncode, done.stdout + done.stderr)


def _world_writable_home() -> Path:
    home = Path(os.environ.get("TMPDIR", "/tmp")) / "blogml-unprivileged-home"
    home.mkdir(exist_ok=True)
    home.chmod(0o777)
    return home


def can_drop_privileges() -> bool:
    """Whether `spawn(..., unprivileged=True)` really cannot write a read-only folder."""
    if os.geteuid() != 0:
        return True
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "--user", "--", "true"], capture_output=True).returncode == 0


needs_unprivileged = pytest.mark.skipif(
    not can_drop_privileges(),
    reason="running as root without user namespaces: a read-only folder is writable here")


def digest(*roots: Path) -> dict[str, str]:
    """Every file and folder under `roots`: path -> content hash (or "dir"), to compare
    before and after a command that must not change anything."""
    found: dict[str, str] = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        paths = [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]
        for path in paths:
            if path.is_dir():
                found[str(path)] = "dir"
            else:
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def assert_refused(outcome: Outcome, exit_code: int, *named: str) -> None:
    """The command exited with `exit_code`, printed no traceback, and its message names
    each of `named` (a file, a key, a line)."""
    assert outcome.crashed is None, f"escaped the CLI: {outcome.crashed!r}\n{outcome.output}"
    assert "Traceback" not in outcome.output, outcome.output
    assert outcome.exit_code == exit_code, outcome.output
    for name in named:
        assert str(name) in outcome.output, f"{name!r} not named in:\n{outcome.output}"
