"""Configs as dotted key paths: what tells the runs of a study apart, and how to name it
briefly. The run dir of a sweep point (`config.sweep.label`) and the columns of `blogml
runs` name keys and show values the same way."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any


def leaves(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{dotted path: value} of every leaf of `config`, in its key order. A list is one leaf
    (compared whole): its items have no names to make a column of."""
    found: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            found.update(leaves(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


def short_names(paths: list[str], taken: Collection[str] = ()) -> list[str]:
    """Each path's shortest dotted suffix that ends no other of `paths` and is none of
    `taken` (`learning_rate`, not `optimizer.learning_rate`); the whole path if none is."""
    def unique(suffix: str, path: str) -> bool:
        return suffix not in taken and not any(
            other != path and (other == suffix or other.endswith("." + suffix))
            for other in paths)

    def name(path: str) -> str:
        parts = path.split(".")
        suffixes = (".".join(parts[-n:]) for n in range(1, len(parts)))
        return next((suffix for suffix in suffixes if unique(suffix, path)), path)
    return [name(path) for path in paths]


def compact(value: Any) -> str:
    """A value in a few characters: floats %g, strings as they are, the rest as JSON."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
