"""What a run prints: tqdm bars on a terminal, plain log lines otherwise, all in train.log."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger("blogml")


def interactive() -> bool:
    """Progress bars only on a terminal, and never under CI."""
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true", "yes")


class _TqdmHandler(logging.Handler):
    """Prints log records above the progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: object = None, line: str | None = None) -> None:
    """`warnings.showwarning` that logs the warning as `warnings` would print it."""
    log.warning("%s", warnings.formatwarning(message, category, filename, lineno, line).rstrip())


@contextlib.contextmanager
def run_logging(log_file: Path | None, level: int = logging.INFO) -> Iterator[logging.Logger]:
    """Route the `blogml` logger (from `level` up) to the console and, appending, to
    `log_file` (None: the console only), and Python warnings (Keras's, TensorFlow's,
    NumPy's) through it: train.log holds what was printed. Everything is put back as it was
    on the way out."""
    handlers: list[logging.Handler] = [_TqdmHandler()]
    handlers[0].setFormatter(logging.Formatter("%(message)s"))
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        handlers[1].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    previous_level, previous_propagate = log.level, log.propagate
    log.setLevel(level)
    for handler in handlers:
        log.addHandler(handler)
    log.propagate = False
    previous_showwarning = warnings.showwarning
    warnings.showwarning = _log_warning
    try:
        yield log
    finally:
        warnings.showwarning = previous_showwarning
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()
        log.setLevel(previous_level)
        log.propagate = previous_propagate


def progress_bar(total: int, initial: int, description: str) -> tqdm:
    """One bar per epoch; disabled (and replaced by log lines) when not interactive."""
    return tqdm(total=total, initial=initial, desc=description, unit="step",
                disable=not interactive(), dynamic_ncols=True, leave=True, file=sys.stderr)
