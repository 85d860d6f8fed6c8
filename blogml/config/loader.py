"""Read YAML configs, apply `--set` overrides, check them against their task's schema."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from blogml.config.schema import Issues, show, suggest
from blogml.errors import ConfigError, ConfigIssue

OVERRIDE_SOURCE = "--set"


@dataclass(frozen=True)
class LoadedConfig:
    """A checked config: where it came from and its resolved values (defaults filled in)."""

    source: str
    values: dict[str, Any]

    @property
    def task(self) -> str:
        return self.values["task"]

    @property
    def name(self) -> str:
        """The config's file stem, the `{config}` placeholder of `run_dir`."""
        return Path(self.source).stem


def parse_overrides(items: list[str] | tuple[str, ...]) -> list[tuple[str, Any]]:
    """`key.path=value` strings to (path, value) pairs; values are parsed as YAML."""
    pairs, issues = [], []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            issues.append(ConfigIssue(OVERRIDE_SOURCE, item,
                                      "expected key.path=value, e.g. train.epochs=2"))
            continue
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as error:
            issues.append(ConfigIssue(OVERRIDE_SOURCE, key, f"value is not valid YAML ({error})"))
            continue
        pairs.append((key, value))
    if issues:
        raise ConfigError(issues)
    return pairs


def _apply_override(raw: dict[str, Any], key: str, value: Any, issues: Issues) -> None:
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            issues.add(key, f"cannot set it from {OVERRIDE_SOURCE}: {where} is {show(child)}, "
                            "not a mapping")
            return
        node = child
    node[parts[-1]] = value


def read_yaml(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """The mapping in a YAML file, or (None, reason) when it cannot be used."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, "file not found"
    except OSError as error:
        return None, f"cannot read it ({error.strerror})"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        return None, f"{where}invalid YAML ({problem})"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return None, f"must be a YAML mapping of keys, got {show(raw)}"
    return raw, None


def check_config(raw: dict[str, Any], source: str,
                 overrides: list[tuple[str, Any]] = ()) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Resolve one raw config: overrides applied, task schema checked, defaults filled in."""
    from blogml.runners.registry import TASKS

    issues = Issues()
    raw = copy.deepcopy(raw)
    for key, value in overrides:
        _apply_override(raw, key, value, issues)
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


def dump_config(values: dict[str, Any]) -> str:
    """The resolved config as YAML, keys in schema order."""
    return yaml.safe_dump(values, sort_keys=False, allow_unicode=True, default_flow_style=False)
