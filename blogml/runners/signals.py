"""Graceful stop on SIGINT/SIGTERM: finish the current step, checkpoint, exit 130."""

from __future__ import annotations

import signal
import threading
from types import FrameType

_requested_from_outside = threading.Event()  # see `request_stop`
_outside_reason = ["stop"]


def request_stop(reason: str) -> None:
    """Stop the run training in this process as a signal would, from any thread.

    A parallel study's worker trains in a thread of its own process, where signal handlers
    cannot be installed; the driver stops it through this instead (see `runners.ray_study`).
    """
    _outside_reason[0] = reason
    _requested_from_outside.set()


def clear_stop_request() -> None:
    """Forget an earlier `request_stop`, before a worker starts its next run."""
    _requested_from_outside.clear()


class StopSignal:
    """Within this context, SIGINT/SIGTERM set `requested` instead of killing the process.

    The training loop checks `requested` after every step, so a stop always lands on a step
    boundary where the state is consistent and can be checkpointed. A second signal raises
    KeyboardInterrupt at once, for a loop stuck in a long step. Off the main thread no
    handler is installed, and only `request_stop` sets `requested`.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._signal: str | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> str | None:
        """The name of what asked for the stop (SIGINT, SIGTERM, ...), or None."""
        if self._signal is None and _requested_from_outside.is_set():
            return _outside_reason[0]
        return self._signal

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt
        self._signal = signal.Signals(signum).name

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
