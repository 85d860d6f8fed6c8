"""Configs checked against their task's schema: the step between reading YAML
(`blogml.config.loader`) and running (`blogml.runners`)."""

from __future__ import annotations

from typing import Any

from blogml.config.compose import compose
from blogml.config.loader import OVERRIDE_SOURCE, LoadedConfig, apply_overrides
from blogml.config.schema import Issues, show, suggest
from blogml.config.sweep import SWEEP_KEY, SWEEP_OPTION, parse_sweep_options, points, sweep_section
from blogml.errors import ConfigError, ConfigIssue, unique_issues
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


def load_configs(paths: list[str] | tuple[str, ...], overrides: list[tuple[str, Any]] = (),
                 sweeps: list[str] | tuple[str, ...] = ()) -> list[LoadedConfig]:
    """Load and check every config: composed from its bases (`config.compose`), one per
    point of its sweep (`config.sweep`: the file's `sweep:` section, with `sweeps` from the
    command line replacing a key both sweep). Raise one ConfigError listing the problems
    of all of them, each with the file and line its value came from."""
    option_issues = Issues()
    command_line = parse_sweep_options(sweeps, option_issues)
    problems = [ConfigIssue(SWEEP_OPTION, path, message) for path, message in option_issues.items]
    loaded = []
    for path in paths:
        composed, issues = compose(path)
        if composed is None:
            problems.extend(issues)
            continue
        section_issues = Issues()
        swept = sweep_section(composed.raw.pop(SWEEP_KEY, None), section_issues)
        problems += [_located(ConfigIssue(path, key, message), composed.origins)
                     for key, message in section_issues.items]
        origins = {key: where for key, where in composed.origins.items()
                   if not key.startswith(f"{SWEEP_KEY}.")}
        for key in swept:
            origins[key] = composed.origins.get(f"{SWEEP_KEY}.{key}", path)
        swept.update(command_line)
        origins.update({key: SWEEP_OPTION for key in command_line})
        both = [key for key, _ in overrides if key in swept]
        problems += [ConfigIssue(path, key, f"is both swept and given by {OVERRIDE_SOURCE}; "
                                 "keep one") for key in both]
        origins.update({key: OVERRIDE_SOURCE for key, _ in overrides})
        for point in points(swept):
            values, issues = check_config(composed.raw, path, [*point, *overrides])
            problems += [_located(issue, origins) for issue in issues]
            if issues or both:
                continue
            if point and "{sweep}" not in values["run_dir"]:
                values["run_dir"] += "/{sweep}"  # each point its own run dir
            loaded.append(LoadedConfig(path, values, origins, point))
    if problems:
        raise ConfigError(unique_issues(problems))  # a value every point shares: said once
    return loaded


def _located(issue: ConfigIssue, origins: dict[str, str]) -> ConfigIssue:
    """The issue with where its value was given appended: "(line 7)", "(base.yaml, line
    3)" or "(from --set)"; unchanged when the key holds a default."""
    key = issue.path
    where = origins.get(key) or next(
        (o for p, o in origins.items() if p.startswith(f"{key}.") or key.startswith(f"{p}.")),
        None)
    if where is None:
        return issue
    file, _, line = where.rpartition(":")
    if not file or not line.isdigit():
        return ConfigIssue(issue.source, key, f"{issue.message} (from {where})")
    place = f"line {line}" if file == issue.source else f"{file}, line {line}"
    return ConfigIssue(issue.source, key, f"{issue.message} ({place})")
