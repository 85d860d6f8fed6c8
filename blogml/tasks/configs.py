"""Configs checked against their task's schema: the step between reading YAML
(`blogml.config.loader`) and running (`blogml.runners`)."""

from __future__ import annotations

from typing import Any

from blogml.config.loader import LoadedConfig, apply_overrides, read_yaml
from blogml.config.schema import Issues, show, suggest
from blogml.errors import ConfigError, ConfigIssue
from blogml.tasks.registry import TASKS


def check_config(raw: dict[str, Any], source: str,
                 overrides: list[tuple[str, Any]] = ()) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Resolve one raw config: overrides applied, task schema checked, defaults filled in."""
    issues = Issues()
    raw = apply_overrides(raw, overrides, issues)
    resolved: dict[str, Any] = {}
    task = raw.get("task")
    if task is None:
        issues.add("task", "missing required key; one of: " + ", ".join(TASKS))
    elif task not in TASKS:
        issues.add("task", f"unknown task {show(task)}; {suggest(str(task), list(TASKS))}")
    else:
        resolved = TASKS[task].schema.check(raw, "", issues)
    return resolved, [ConfigIssue(source, path, message) for path, message in issues.items]


def load_configs(paths: list[str] | tuple[str, ...],
                 overrides: list[tuple[str, Any]] = ()) -> list[LoadedConfig]:
    """Load and check every config; raise one ConfigError listing the problems of all of them."""
    loaded, problems = [], []
    for path in paths:
        raw, reason = read_yaml(path)
        if raw is None:
            problems.append(ConfigIssue(path, "", reason))
            continue
        values, issues = check_config(raw, path, overrides)
        problems.extend(issues)
        if not issues:
            loaded.append(LoadedConfig(path, values))
    if problems:
        raise ConfigError(problems)
    return loaded
