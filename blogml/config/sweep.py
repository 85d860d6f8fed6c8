"""Sweeps: one config, many runs (README: Sweeps).

    blogml train c.yaml --sweep optimizer.learning_rate=1e-3,3e-4 --sweep seed=range(0,3)

or, in the config file,

    sweep:
      optimizer.learning_rate: logspace(-4, -2, 3)   # 1e-4, 1e-3, 1e-2
      seed: [0, 1, 2]

The points are the cartesian product of the swept keys (the first key varies slowest),
each applied to the config like a `--set`. A value list is YAML values separated by
commas, `range(a, b[, step])` (integers, b excluded, as Python's) or `logspace(a, b, n)`
(n values from 10^a to 10^b). `{sweep}` in `run_dir` names a point's values, e.g.
`learning_rate=0.001,seed=0`.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import yaml

from blogml.config.keypaths import compact, short_names
from blogml.config.schema import Issues, show

SWEEP_KEY = "sweep"
SWEEP_OPTION = "--sweep"
_CALL = re.compile(r"^\s*(range|logspace)\s*\((.*)\)\s*$")

Point = tuple[tuple[str, Any], ...]


def parse_sweep_options(items: list[str] | tuple[str, ...], issues: Issues) -> dict[str, list]:
    """`--sweep key.path=VALUES` strings to {path: values}."""
    sweeps: dict[str, list] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            issues.add(item, "expected key.path=VALUES, e.g. optimizer.learning_rate=1e-3,3e-4 "
                             "or seed=range(0,3)")
            continue
        if key in sweeps:
            issues.add(key, f"is swept twice by {SWEEP_OPTION}; give its values once")
            continue
        values = sweep_values(text, key, issues)
        if values is not None:
            sweeps[key] = values
    return sweeps


def sweep_section(section: Any, issues: Issues) -> dict[str, list]:
    """The `sweep:` section of a config file to {path: values}."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        issues.add(SWEEP_KEY, f"must be a mapping of key.path: values, got {show(section)}")
        return {}
    sweeps = {}
    for key, spec in section.items():
        path = f"{SWEEP_KEY}.{key}"
        if not isinstance(key, str) or any(not part for part in key.split(".")):
            issues.add(path, "key must be a dotted key path, e.g. optimizer.learning_rate")
            continue
        values = list(spec) if isinstance(spec, list) else (
            sweep_values(spec, path, issues) if isinstance(spec, str) else [spec])
        if values is not None:
            if not values:
                issues.add(path, "sweeps no value; give at least one")
                continue
            sweeps[key] = values
    return sweeps


def sweep_values(text: str, where: str, issues: Issues) -> list | None:
    """A sweep's values from `range(..)`, `logspace(..)` or comma-separated YAML values."""
    call = _CALL.match(text)
    if call:
        return _call(call.group(1), call.group(2), where, issues)
    values = []
    for part in _split_top_level(text):
        try:
            values.append(_scalar(part))
        except yaml.YAMLError as error:
            issues.add(where, f"value {part!r} is not valid YAML ({error})")
            return None
    if not values or all(v is None for v in values):
        issues.add(where, "sweeps no value; give values separated by commas")
        return None
    return values


def _scalar(text: str) -> Any:
    """A YAML value, where `1e-3` is a number too (YAML 1.1 reads it as a string)."""
    value = yaml.safe_load(text) if text.strip() else None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _call(name: str, arguments: str, where: str, issues: Issues) -> list | None:
    try:
        numbers = [_scalar(a) for a in arguments.split(",")]
    except yaml.YAMLError:
        numbers = [None]
    if name == "range":
        if not 2 <= len(numbers) <= 3 or not all(isinstance(n, int) and not isinstance(n, bool)
                                                 for n in numbers) or numbers[2:] == [0]:
            issues.add(where, f"range({arguments}): expected range(start, stop[, step]) with "
                              "integers and a step that is not 0")
            return None
        values = list(range(*numbers))
    else:
        if len(numbers) != 3 or not all(isinstance(n, (int, float)) and not isinstance(n, bool)
                                        for n in numbers) or not isinstance(numbers[2], int) \
                or numbers[2] < 1:
            issues.add(where, f"logspace({arguments}): expected logspace(a, b, n): n values "
                              "from 10^a to 10^b, n an integer >= 1")
            return None
        a, b, n = numbers
        values = [10.0 ** (a + (b - a) * i / (n - 1)) if n > 1 else 10.0 ** a for i in range(n)]
    if not values:
        issues.add(where, f"{name}({arguments}) is empty")
        return None
    return values


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets and quotes: `[8,8],[16,16]` is two values."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def points(sweeps: dict[str, list]) -> list[Point]:
    """The cartesian product of the swept values, the first key varying slowest; one empty
    point when nothing is swept."""
    keys = list(sweeps)
    return [tuple(zip(keys, combination))
            for combination in itertools.product(*(sweeps[k] for k in keys))]


def label(point: Point) -> str:
    """`learning_rate=0.001,seed=0`: each key by its shortest dotted suffix that no other
    swept key shares, each value compact (`keypaths.compact`); no `/` (no folder of its own)."""
    names = short_names([key for key, _ in point])
    return ",".join(f"{name}={compact(value)}".replace("/", "-").replace("\\", "-")
                    for name, (_, value) in zip(names, point))
