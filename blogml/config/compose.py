"""Configs composed from base files, with `${env:NAME}` values, remembering where each value
came from (README: Composed configs).

    base: [../common.yaml, optimizers/adamw.yaml]   # relative to this file, merged in order
    data: {path: "${env:DATA_DIR,data}/train.h5"}   # an environment variable, or a default

The bases are deep-merged in order and the file itself last: a mapping merges key by key,
any other value (a list too) replaces what was there. A base may have bases of its own.
Every value keeps its origin, "file:line", so that an error names the line to change
however deep the value was inherited, and `blogml config show --origin` can say it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from blogml.config.loader import parse_yaml, read_yaml_text
from blogml.config.schema import show
from blogml.errors import ConfigIssue

BASE_KEY = "base"
_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?:,([^}]*))?\}")


@dataclass
class Composed:
    """A config file with its bases merged in: the raw values and each leaf's origin."""

    raw: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict)  # dotted leaf path -> "file:line"


def compose(path: str) -> tuple[Composed | None, list[ConfigIssue]]:
    """`path` with its bases merged and `${env:...}` resolved; or None and every problem."""
    issues: list[ConfigIssue] = []
    composed = _compose(path, [], issues)
    return (None, issues) if issues else (composed, [])


def _compose(path: str, chain: list[Path], issues: list[ConfigIssue]) -> Composed | None:
    text, reason = read_yaml_text(path)
    if text is None:
        issues.append(ConfigIssue(path, "", reason))
        return None
    raw = parse_yaml(text) or {}  # read_yaml_text has checked it parses to a mapping
    lines = key_lines(text)
    own = Composed(raw, {key: f"{path}:{line}" for key, line in _leaf_lines(raw, lines)})
    _resolve_env(own, path, lines, issues)
    bases = own.raw.pop(BASE_KEY, None)
    if bases is None:
        return own
    where = f"{path}:{lines.get(BASE_KEY, 1)}"
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        issues.append(ConfigIssue(where, BASE_KEY, "must be a path or a list of paths "
                                  f"(relative to this file), got {show(bases)}"))
        return None
    merged = Composed({})
    here = Path(path).resolve()
    for base in bases:
        base_path = Path(os.path.normpath(Path(path).parent / base))  # no a/../ in messages
        if base_path.resolve() in [*chain, here]:
            cycle = " -> ".join(str(p) for p in [*chain, here, base_path.resolve()])
            issues.append(ConfigIssue(where, BASE_KEY, f"{base} is a base of itself ({cycle}); "
                                      "remove one of these base: entries"))
            continue
        inherited = _compose(str(base_path), [*chain, here], issues)
        if inherited is not None:
            merged = merge(merged, inherited)
    own.origins.pop(BASE_KEY, None)
    return merge(merged, own)


def merge(under: Composed, over: Composed) -> Composed:
    """`over` deep-merged onto `under`: mappings key by key, any other value replaces."""
    raw, origins = _merge(under.raw, over.raw, "", dict(under.origins), over.origins)
    return Composed(raw, origins)


def _merge(under: dict, over: dict, prefix: str, origins: dict[str, str],
           over_origins: dict[str, str]) -> tuple[dict, dict[str, str]]:
    result = dict(under)
    for key, value in over.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key], origins = _merge(result[key], value, f"{path}.", origins, over_origins)
            continue
        for inherited in [p for p in origins if p == path or p.startswith(f"{path}.")]:
            del origins[inherited]  # replaced whole
        origins.update({p: o for p, o in over_origins.items()
                        if p == path or p.startswith(f"{path}.")})
        result[key] = value
    return result, origins


def key_lines(text: str) -> dict[str, int]:
    """The line (1-based) of every key of a YAML mapping, by dotted path."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                path = f"{prefix}{key_node.value}"
                lines.setdefault(path, key_node.start_mark.line + 1)
                walk(value_node, f"{path}.")

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, "")
    return lines


def _leaf_lines(raw: dict, lines: dict[str, int], prefix: str = "") -> list[tuple[str, int]]:
    """(dotted path, line) of every leaf value (a non-empty mapping is not a leaf)."""
    found = []
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            found += _leaf_lines(value, lines, f"{path}.")
        else:
            found.append((path, lines.get(path, 1)))
    return found


def _resolve_env(config: Composed, path: str, lines: dict[str, int],
                 issues: list[ConfigIssue]) -> None:
    """Replace `${env:NAME}` / `${env:NAME,default}` in every string value, in place. A
    value that is one reference alone is parsed as YAML (`${env:LR,1e-3}` is a number),
    like a `--set` value; within a longer string the text is inserted as it is."""

    def substitute(value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: substitute(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [substitute(v, key) for v in value]
        if not isinstance(value, str) or "${env:" not in value:
            return value
        missing = []

        def lookup(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            missing.append(name)
            return ""

        whole = _ENV.fullmatch(value)
        text = _ENV.sub(lookup, value)
        for name in missing:
            issues.append(ConfigIssue(f"{path}:{lines.get(key, 1)}", key,
                                      f"${{env:{name}}} is not set; export {name}=... or give "
                                      f"a default: ${{env:{name},VALUE}}"))
        if whole and not missing:
            try:
                return yaml.safe_load(text) if text.strip() else None
            except yaml.YAMLError:
                return text
        return text

    config.raw = substitute(config.raw, "")
