"""Fixtures of the bad-input cases: every one checks that nothing existing was changed."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bad_inputs.harness import digest


@pytest.fixture
def unchanged() -> Iterator[list[Path]]:
    """Append paths to the yielded list; after the test, each must be as it was when
    it was appended (compared file by file by content hash)."""
    watched: list[tuple[Path, dict[str, str]]] = []

    class Watch(list):
        def append(self, path: Path) -> None:  # type: ignore[override]
            watched.append((Path(path), digest(Path(path))))
            super().append(path)

    yield Watch()
    for path, before in watched:
        assert digest(path) == before, f"{path} changed"


@pytest.fixture
def open_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Like `in_tmp`, but in a folder an unprivileged user can enter and read (pytest's
    tmp_path sits under a folder only its owner can enter), for `spawn(unprivileged=True)`.
    Removed afterwards, read-only subfolders included."""
    folder = Path(tempfile.mkdtemp(prefix="blogml-open-"))
    folder.chmod(0o755)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("CI", "true")
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            os.chmod(path, 0o755)
    shutil.rmtree(folder)
