"""One writer at a time for a run directory or a prepared cache file.

Two `train --resume` of the same run dir, or two `data prepare` to the same file, would
otherwise both write into it. A lock is an `flock` on a small file beside what it guards:
the kernel drops it when the holding process ends however it ends (even `kill -9`), so a
lock is never stale. The file records the holder's pid, host and start time, which is all
a refused process can say about who holds it. The holder removes the file on release; a
process that opened the file just before it was removed sees that its file is no longer
the one at the path and tries again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from blogml.errors import BlogmlError, fix_for

ATTEMPTS = 5  # a lock file removed between open and flock: try again, a few times at most


class LockedError(BlogmlError):
    """Another live process holds the lock."""


def _holder(handle) -> str:
    handle.seek(0)
    try:
        who = json.loads(handle.read() or "{}")
    except json.JSONDecodeError:
        who = {}
    return (f"pid {who.get('pid', '?')} on host {who.get('host', '?')}"
            + (f" (since {who['since']})" if who.get("since") else ""))


def _same_file(handle, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def exclusive(lock_path: Path, what: str) -> Iterator[None]:
    """Hold `lock_path` for the duration; LockedError naming the holder when another
    process has it. `what` names the guarded thing in the message (a run dir, a file)."""
    lock_path = Path(lock_path)
    for _ in range(ATTEMPTS):
        try:
            handle = open(lock_path, "a+", encoding="utf-8")
        except OSError as error:
            raise BlogmlError(f"{what}: cannot create its lock {lock_path} "
                              f"({error.strerror}); {fix_for(error)}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise LockedError(f"{what}: in use by {holder}; wait for it to end, or stop "
                              f"that process (its lock is {lock_path})") from None
        if _same_file(handle, lock_path):
            break
        handle.close()  # removed by its last holder while we opened it: take the new one
    else:
        raise LockedError(f"{what}: its lock {lock_path} keeps changing hands; try again")
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()
        handle.close()


def held_by(lock_path: Path) -> str | None:
    """Who holds `lock_path` now ("pid N on host H"), or None: a check that takes nothing,
    for refusing a run before any compute is spent."""
    try:
        handle = open(lock_path, encoding="utf-8")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(handle)
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None
