"""Exceptions that the CLI turns into exit codes without a traceback.

User mistakes (a bad config, a missing data path, an unusable checkpoint) exit with
code 2; a training run that fails exits with 1; an interrupted run with 130.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class BlogmlError(Exception):
    """A user-facing error: printed as one message, no traceback."""

    exit_code = EXIT_BAD_INPUT


class ConfigIssue:
    """One problem in one config: where it is and what to do about it."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        self.message = message

    def __str__(self) -> str:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"ConfigIssue({str(self)!r})"


def unique_issues(issues: Iterable[ConfigIssue]) -> list[ConfigIssue]:
    """Each issue once (the same text from two points of a sweep or two cells of a bench),
    in first-seen order."""
    return list({str(issue): issue for issue in issues}.values())


class ConfigError(BlogmlError):
    """All the problems found in one or more configs, reported together."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class CheckpointError(BlogmlError):
    """A checkpoint is missing, corrupt, or does not fit the model."""


class RunDirError(BlogmlError):
    """A run directory is missing, not a run, or would be overwritten."""


# What the user can do about a failed file operation, by errno. Refusals of the path itself
# are bad input (exit 2); a disk that fills or fails is a run that failed (exit 1).
_FIXES = {
    errno.ENOSPC: "free some space (df -h shows where)",
    errno.EDQUOT: "free some of your quota",
    errno.EROFS: "the file system is mounted read-only; choose a writable folder",
    errno.EACCES: "make it writable for you (chmod/chown), or choose another folder",
    errno.EPERM: "make it writable for you (chmod/chown), or choose another folder",
    errno.EEXIST: "remove it, or choose another path",
    errno.EISDIR: "it is a folder; give a file path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.ENOENT: "check the path",
}
_BAD_INPUT = {errno.EROFS, errno.EACCES, errno.EPERM, errno.EEXIST, errno.EISDIR,
              errno.ENOTDIR, errno.ENOENT}


def _errno_and_path(error: OSError) -> tuple[int | None, str | None]:
    """errno and path of an OSError; h5py's carry both only inside their message
    ("... filename = 'x.h5', ... errno = 28, error message = ...")."""
    if error.errno is not None:
        return error.errno, error.filename
    text = str(error)
    number = re.search(r"errno = (\d+)", text)
    path = re.search(r"(?:file)?name = '([^']+)'", text)
    return (int(number.group(1)) if number else None,
            path.group(1) if path else error.filename)


def naming(error: OSError, path: os.PathLike | str) -> OSError:
    """`error` as a plain OSError that names `path`, for errors raised deep inside a library
    (h5py) without the file the caller was writing."""
    number, found = _errno_and_path(error)
    if number is None or found:
        return error
    return OSError(number, os.strerror(number), str(path))


def fix_for(error: OSError) -> str:
    """One hint for a failed file operation (what to do next)."""
    return _FIXES.get(_errno_and_path(error)[0], "check the disk and the path")


def describe_os_error(error: OSError) -> str:
    """`PATH: reason; fix` for a failed file operation, without a traceback."""
    number, path = _errno_and_path(error)
    reason = error.strerror or (os.strerror(number) if number is not None else str(error))
    return f"{path or 'a file'}: {reason}; {fix_for(error)}"


def os_error_exit_code(error: OSError) -> int:
    """2 when the path itself refuses (read-only, exists, permission), else 1."""
    return EXIT_BAD_INPUT if _errno_and_path(error)[0] in _BAD_INPUT else EXIT_FAILED
