"""Choosing the Keras backend of a process: it must happen before Keras is first imported,
and a process keeps the backend it started with."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from blogml.errors import BlogmlError


def select_backend(backend: str) -> None:
    """Set KERAS_BACKEND before Keras is first imported; refuse to switch afterwards."""
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise BlogmlError(f"Keras is already running on {keras.backend.backend()}; "
                              f"cannot switch to {backend} in this process")
        return
    os.environ["KERAS_BACKEND"] = backend
    # 3: TensorFlow's native log shows fatal errors only. At 2 its graph optimiser prints
    # "E0000 ... meta_optimizer.cc ... remapper failed" on every VQ-VAE run (a fusion it
    # skips, harmless); real failures still reach Python as exceptions. Set the variable
    # lower to see that log.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _native_stderr_silenced():
        import keras  # noqa: F401


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide what native code prints while Keras (and TensorFlow) load.

    TensorFlow's C++ start-up lines ("oneDNN custom operations are on", absl's "log messages
    before InitializeLog") bypass TF_CPP_MIN_LOG_LEVEL; they would open every run's output.
    Python exceptions are unaffected: they are raised after stderr is back.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
