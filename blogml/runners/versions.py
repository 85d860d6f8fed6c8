"""Versions and code revision recorded in every summary.json, for reproducibility."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import blogml


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """The commit of the blogml checkout, with `-dirty` when it has local changes."""
    root = Path(blogml.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "blogml"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


@functools.cache
def environment_versions() -> dict[str, Any]:
    import keras

    backend = keras.backend.backend()
    backend_package = {"tensorflow": "tensorflow-cpu", "jax": "jax", "torch": "torch"}[backend]
    return {
        "blogml": blogml.__version__,
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": _version(backend_package) or _version(backend),
        "numpy": _version("numpy"),
        "git_commit": _git_commit(),
    }
