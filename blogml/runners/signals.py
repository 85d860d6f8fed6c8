"""Graceful stop on SIGINT/SIGTERM: finish the current step, checkpoint, exit 130."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopSignal:
    """Within this context, SIGINT/SIGTERM set `requested` instead of killing the process.

    The training loop checks `requested` after every step, so a stop always lands on a step
    boundary where the state is consistent and can be checkpointed. A second signal raises
    KeyboardInterrupt at once, for a loop stuck in a long step.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
