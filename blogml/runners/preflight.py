"""The data of every config checked before any run starts, all problems in one error.

`blogml train` calls `check_data` after loading its configs and before planning run
dirs: a study with one config whose data is broken stops at once, listing every problem
of every config, with nothing written, instead of crashing at that config's first
validation after the others have trained. Each task says what its data needs in its own
`checks` module (see `registry.Task.data_check`). Keras-free: `blogml config check --data`
runs it too.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from blogml.config.loader import LoadedConfig
from blogml.errors import ConfigError, ConfigIssue
from blogml.runners.rundir import format_run_dir
from blogml.tasks.registry import TASKS


def check_data(configs: list[LoadedConfig]) -> None:
    """ConfigError listing every data problem of every config, in order, if there is one.

    A config may read a run that an earlier config of the same command makes (a prior
    over the codes of a VQ-VAE trained just before it): it is checked against that config
    instead of the disk, where the run does not exist yet.
    """
    issues: list[ConfigIssue] = []
    planned: dict[Path, LoadedConfig] = {}
    for loaded in configs:
        issues += _issues(loaded.values, loaded.source, planned)
        made = _fixed_run_dir(loaded)
        if made is not None:
            planned[made] = loaded
    if issues:
        raise ConfigError(issues)


def require_data(values: dict[str, Any], source: str) -> None:
    """ConfigError unless the data of one config is usable now: for a runner built without
    `blogml train` (eval, predict, sample, a run another run loads), whose data may have
    changed or gone since it was checked."""
    issues = _issues(values, source, {})
    if issues:
        raise ConfigError(issues)


def _issues(values: dict[str, Any], source: str,
                planned: Mapping[Path, LoadedConfig]) -> list[ConfigIssue]:
    """The problems the config's task check finds (none for a task that makes its data)."""
    check = TASKS[values["task"]].data_check()
    return check(values, source, planned) if check is not None else []


def _fixed_run_dir(loaded: LoadedConfig) -> Path | None:
    """The (resolved) run dir a config will make, unless its template holds `{time}`: such
    a dir is named when the run starts, so no other config can point at it beforehand."""
    template = loaded.values["run_dir"]
    if "time" in {name for _, name, _, _ in string.Formatter().parse(template)}:
        return None
    return Path(format_run_dir(loaded, "")).resolve()
