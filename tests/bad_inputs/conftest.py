"""Fixtures of the bad-input cases: every one checks that nothing existing was changed."""

from __future__ import annotations

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
