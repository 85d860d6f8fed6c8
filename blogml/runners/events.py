"""The run's event stream: `metrics.jsonl` (the record) mirrored to TensorBoard."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from blogml.runners.rundir import RunDir, write_text_atomic


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of a metrics.jsonl, in file order. Every line that is not valid JSON is
    skipped, wherever it is (a torn last line from a killed writer, a blank line, any
    other); a missing file gives []."""
    events = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except FileNotFoundError:
        pass
    return events


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def as_number(value: Any) -> float | None:
    """A metric value of metrics.jsonl (or summary.json) as a float: a number as it is, a
    non-finite one as `EventLog.write` stores it ("nan", "inf", "-inf") read back; None for
    anything else (a missing value, a bool, a string that is no number)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.lower() in ("nan", "inf", "-inf", "infinity",
                                                    "-infinity"):
        return float(value)
    return None


class EventLog:
    """Appends events to metrics.jsonl and TensorBoard.

    On resume from step `s`, events after `s` (written by the previous process after its
    last checkpoint) are dropped from metrics.jsonl and purged in TensorBoard, so the
    record has each step exactly once, as an uninterrupted run would.
    """

    def __init__(self, run_dir: RunDir, resume_step: int | None = None) -> None:
        from tensorboardX import SummaryWriter

        self.path = run_dir.metrics
        self.last: dict[str, dict[str, Any]] = {}  # the latest event of each kind
        if resume_step is None:
            self.path.write_text("", encoding="utf-8")
            self._tensorboard = SummaryWriter(str(run_dir.tensorboard))
        else:
            kept = [e for e in read_events(self.path) if e.get("step", 0) <= resume_step]
            self.last = {e["event"]: e for e in kept}
            write_text_atomic(self.path, "".join(json.dumps(e) + "\n" for e in kept))
            self._tensorboard = SummaryWriter(str(run_dir.tensorboard),
                                              purge_step=resume_step + 1)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, event: str, step: int, values: dict[str, float], **context: Any) -> None:
        """One event: `values` are the metrics (plotted); `context` adds fields like epoch."""
        record = {"event": event, "step": step, **context,
                  **{k: _json_number(v) for k, v in values.items()}}
        self.last[event] = record
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        for name, value in values.items():
            self._tensorboard.add_scalar(f"{event}/{name}", value, step)

    def close(self) -> None:
        self._file.close()
        self._tensorboard.close()
