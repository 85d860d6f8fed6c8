"""Read YAML configs and apply `--set` overrides; `blogml.tasks.configs` checks them against
their task's schema."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from blogml.config.schema import Issues, show
from blogml.errors import ConfigError, ConfigIssue

OVERRIDE_SOURCE = "--set"


@dataclass(frozen=True)
class LoadedConfig:
    """A checked config: where it came from and its resolved values (defaults filled in).

    `origins` maps the dotted path of every value the user gave (in the file, a `base:`
    file, `--set` or a sweep) to where it was given ("configs/a.yaml:12", "--set",
    "--sweep"); a key absent from it holds its default. `point` is the sweep point this
    config is, as (dotted path, value) pairs; empty for a config that is not swept.
    """

    source: str
    values: dict[str, Any]
    origins: Mapping[str, str] = field(default_factory=dict)
    point: tuple[tuple[str, Any], ...] = ()

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


def apply_overrides(raw: dict[str, Any], overrides: list[tuple[str, Any]] | tuple,
                    issues: Issues) -> dict[str, Any]:
    """A copy of `raw` with each (key.path, value) set; a path through a value that is not a
    mapping is reported in `issues`."""
    raw = copy.deepcopy(raw)
    for key, value in overrides:
        _apply_override(raw, key, value, issues)
    return raw


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


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping gives the same key twice."""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error:
    plain YAML keeps the last one, so a second `train:` section would silently replace
    the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                earlier = first_seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if earlier is not key_node:
                raise DuplicateKeyError(
                    problem=f"duplicate key {key!r} (first given on line "
                            f"{earlier.start_mark.line + 1}); keep one of them",
                    problem_mark=key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _not_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    line = data.count(b"\n", 0, error.start) + 1
    column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
    return (f"line {line}, column {column}: byte 0x{data[error.start]:02x} is not UTF-8 "
            f"(offset {error.start}); save the file as UTF-8")


def parse_yaml(text: str) -> Any:
    """YAML text to Python values, refusing duplicate keys (see `_StrictLoader`)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)


def read_yaml_text(path: str) -> tuple[str | None, str | None]:
    """The text of a YAML file that holds a mapping, or (None, reason) when it cannot be used."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None, "file not found"
    except IsADirectoryError:
        return None, "is a folder, not a YAML file"
    except OSError as error:
        return None, f"cannot read it ({error.strerror})"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, _not_utf8(data, error)
    try:
        raw = parse_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        if isinstance(error, DuplicateKeyError):
            return None, f"{where}{problem}"
        return None, f"{where}invalid YAML ({problem})"
    if raw is not None and not isinstance(raw, dict):
        return None, f"must be a YAML mapping of keys, got {show(raw)}"
    return text, None


def read_yaml(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """The mapping in a YAML file, or (None, reason) when it cannot be used."""
    text, reason = read_yaml_text(path)
    if text is None:
        return None, reason
    return parse_yaml(text) or {}, None


def dump_config(values: dict[str, Any]) -> str:
    """The resolved config as YAML, keys in schema order."""
    return yaml.safe_dump(values, sort_keys=False, allow_unicode=True, default_flow_style=False)
