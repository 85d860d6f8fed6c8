"""Exceptions that the CLI turns into exit codes without a traceback.

User mistakes (a bad config, a missing data path, an unusable checkpoint) exit with
code 2; a training run that fails exits with 1; an interrupted run with 130.
"""

from __future__ import annotations

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


class ConfigError(BlogmlError):
    """All the problems found in one or more configs, reported together."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class CheckpointError(BlogmlError):
    """A checkpoint is missing, corrupt, or does not fit the model."""


class RunDirError(BlogmlError):
    """A run directory is missing, not a run, or would be overwritten."""
