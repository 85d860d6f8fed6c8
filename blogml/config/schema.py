"""Declarative config schemas: typed fields with defaults, checked exhaustively.

A schema is a tree of :class:`Spec` objects. ``Section.check`` walks a raw YAML mapping,
fills in defaults, and collects *every* problem it finds (wrong type, out of range,
unknown key with a "did you mean" suggestion) instead of stopping at the first, so a
researcher fixes a config in one round. The result is plain Python data (dicts, lists,
scalars): the same shape the YAML had, with every default filled in.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_MISSING = object()

# PyYAML follows YAML 1.1, where "1e-3" (no dot) is a string, not a float. Researchers write
# it that way all the time, and `--set optimizer.learning_rate=3e-4` produces it, so float
# fields accept a string that is a plain decimal number.
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class Issues:
    """Collects problems as (key path, message) pairs during one check."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def __bool__(self) -> bool:
        return bool(self.items)


def show(value: Any) -> str:
    """How a given value is quoted in an error message."""
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insertions, deletions, substitutions, swaps."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(rows[i - 1][j] + 1, row[j - 1] + 1,
                         rows[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[i - 2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def suggest(word: str, choices: list[str]) -> str:
    """'did you mean ...?' for a near miss (typo, swapped letters, truncation), else the list.

    Candidates are near by edit distance or by difflib's similarity; the closest by edit
    distance wins, so 'adma' suggests 'adam', not 'adamax'.
    """
    word = str(word)
    near = [c for c in choices
            if _edit_distance(word, c) <= max(1, len(word) // 4)
            or difflib.SequenceMatcher(None, word, c).ratio() >= 0.7]
    if near:
        best = min(near, key=lambda c: (_edit_distance(word, c),
                                        -difflib.SequenceMatcher(None, word, c).ratio()))
        return f"did you mean {best!r}?"
    return "expected one of: " + ", ".join(choices)


class Spec:
    """One config value: how to check it, its default and its documentation."""

    def __init__(self, default: Any = _MISSING, doc: str = "", nullable: bool = False) -> None:
        self._default = default
        self.doc = doc
        self.nullable = nullable or default is None

    @property
    def required(self) -> bool:
        return self._default is _MISSING

    def default(self) -> Any:
        value = self._default
        return value() if callable(value) else value

    def check(self, value: Any, path: str, issues: Issues) -> Any:
        if value is None and self.nullable:
            return None
        return self._check(value, path, issues)

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        raise NotImplementedError

    def expected(self) -> str:
        """A phrase for error messages and the config reference: 'an integer >= 1'."""
        raise NotImplementedError

    def _reject(self, value: Any, path: str, issues: Issues) -> Any:
        null = " or null" if self.nullable else ""
        issues.add(path, f"must be {self.expected()}{null}, got {show(value)}")
        return value


def _bounds(minimum: float | None, maximum: float | None, min_exclusive: bool) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if min_exclusive else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    return " and ".join(parts)


class Int(Spec):
    def __init__(self, default: Any = _MISSING, doc: str = "", *, min: int | None = None,
                 max: int | None = None, nullable: bool = False) -> None:
        super().__init__(default, doc, nullable)
        self.min, self.max = min, max

    def expected(self) -> str:
        bounds = _bounds(self.min, self.max, False)
        return "an integer" + (f" {bounds}" if bounds else "")

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                return self._reject(value, path, issues)
        too_low = self.min is not None and value < self.min
        if too_low or (self.max is not None and value > self.max):
            return self._reject(value, path, issues)
        return value


class Float(Spec):
    def __init__(self, default: Any = _MISSING, doc: str = "", *, min: float | None = None,
                 max: float | None = None, min_exclusive: bool = False,
                 nullable: bool = False) -> None:
        super().__init__(default, doc, nullable)
        self.min, self.max, self.min_exclusive = min, max, min_exclusive

    def expected(self) -> str:
        bounds = _bounds(self.min, self.max, self.min_exclusive)
        return "a number" + (f" {bounds}" if bounds else "")

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
            value = float(value)
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value)):
            return self._reject(value, path, issues)
        value = float(value)
        too_low = self.min is not None and (
            value <= self.min if self.min_exclusive else value < self.min)
        too_high = self.max is not None and value > self.max
        if too_low or too_high:
            return self._reject(value, path, issues)
        return value


class Bool(Spec):
    def expected(self) -> str:
        return "true or false"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if not isinstance(value, bool):
            return self._reject(value, path, issues)
        return value


class Str(Spec):
    """A string, optionally one of fixed choices (with a "did you mean")."""

    def __init__(self, default: Any = _MISSING, doc: str = "", *,
                 choices: list[str] | None = None, nullable: bool = False) -> None:
        super().__init__(default, doc, nullable)
        self.choices = choices

    def expected(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return "a string"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if not isinstance(value, str):
            return self._reject(value, path, issues)
        if self.choices and value not in self.choices:
            issues.add(path, f"unknown value {value!r}; {suggest(value, self.choices)}")
        return value


class Choice(Spec):
    """One of a fixed set of YAML scalars of any type, e.g. ``auto``, ``true``, ``false``."""

    def __init__(self, choices: list[Any], default: Any = _MISSING, doc: str = "") -> None:
        super().__init__(default, doc, nullable=None in choices)
        self.choices = choices

    def expected(self) -> str:
        return "one of " + ", ".join(show(c).strip("'") for c in self.choices)

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if not any(value is c or (type(value) is type(c) and value == c) for c in self.choices):
            return self._reject(value, path, issues)
        return value


class ListOf(Spec):
    def __init__(self, item: Spec, default: Any = _MISSING, doc: str = "", *,
                 min_length: int = 0, nullable: bool = False) -> None:
        super().__init__(default, doc, nullable)
        self.item, self.min_length = item, min_length

    def expected(self) -> str:
        least = f" of at least {self.min_length} items" if self.min_length else ""
        return f"a list{least}, each {self.item.expected()}"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if not isinstance(value, list) or len(value) < self.min_length:
            return self._reject(value, path, issues)
        return [self.item.check(v, f"{path}[{i}]", issues) for i, v in enumerate(value)]


class MapOf(Spec):
    """A mapping with free keys, e.g. `{1000: 1.0, 2000: 0.1}` or `{pattern: multiplier}`."""

    def __init__(self, key: Spec, value: Spec, default: Any = _MISSING, doc: str = "", *,
                 min_length: int = 0, nullable: bool = False) -> None:
        super().__init__(default, doc, nullable)
        self.key, self.value, self.min_length = key, value, min_length

    def expected(self) -> str:
        least = f" of at least {self.min_length} entries" if self.min_length else ""
        return f"a mapping{least} from {self.key.expected()} to {self.value.expected()}"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if not isinstance(value, Mapping) or len(value) < self.min_length:
            return self._reject(value, path, issues)
        resolved = {}
        for key, item in value.items():
            before = len(issues.items)
            checked_key = self.key.check(key, join(path, key), issues)
            if len(issues.items) > before:
                issues.items[-1] = (join(path, key), f"key {issues.items[-1][1]}")
            resolved[checked_key] = self.value.check(item, join(path, key), issues)
        return resolved


class ExistingPath(Str):
    """A path that must exist when the config is checked; `hint` says how to make it."""

    def __init__(self, default: Any = _MISSING, doc: str = "", *, hint: str = "",
                 nullable: bool = False) -> None:
        super().__init__(default, doc, nullable=nullable)
        self.hint = hint

    def expected(self) -> str:
        return "the path of an existing file or folder"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        value = super()._check(value, path, issues)
        if isinstance(value, str) and not os.path.exists(value):
            hint = f"; {self.hint}" if self.hint else ""
            issues.add(path, f"{value!r} does not exist{hint}")
        return value


class Pattern(Str):
    """A regular expression matched against variable names."""

    def expected(self) -> str:
        return "a regular expression"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        value = super()._check(value, path, issues)
        if isinstance(value, str):
            try:
                re.compile(value)
            except re.error as error:
                issues.add(path, f"is not a valid regular expression ({error})")
        return value


Validator = Callable[[dict[str, Any], str, Issues], None]


class Rule:
    """A cross-key validator that needs only `keys` (paths relative to its section) valid.

    A plain validator runs once its whole section is valid, since it may read any key. A
    rule that reads a few keys runs whenever those are valid, so its problem (heads that
    do not divide the width, say) is reported together with the others instead of only
    after they are fixed.
    """

    def __init__(self, keys: tuple[str, ...], check: Validator) -> None:
        self.keys = keys
        self.check = check

    def __call__(self, config: dict[str, Any], path: str, issues: Issues) -> None:
        self.check(config, path, issues)

    def blocked_by(self, path: str, found: list[tuple[str, str]]) -> bool:
        """Whether a problem in `found` is in (or above) one of the keys this rule reads."""
        needed = [join(path, key) for key in self.keys]
        return any(where == key or where.startswith((key + ".", key + "["))
                   or key.startswith(where + ".") for where, _ in found for key in needed)


def needs(*keys: str) -> Callable[[Validator], Rule]:
    """Decorate a validator that reads only `keys` (see `Rule`)."""
    return lambda check: Rule(keys, check)


class Section(Spec):
    """A mapping with a fixed set of keys. Unknown keys are errors, never ignored."""

    def __init__(self, fields: dict[str, Spec], doc: str = "", *,
                 validators: list[Validator] | None = None, optional: bool = False) -> None:
        """`optional`: the section is off (null) unless written; `{}` turns it on with defaults."""
        super().__init__(None if optional else {}, doc, nullable=optional)
        self.fields = fields
        self.validators = validators or []
        self.optional = optional

    def default(self) -> Any:
        return None if self.optional else self.check({}, "", Issues())

    def expected(self) -> str:
        return "a mapping"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            return self._reject(value, path, issues)
        before = len(issues.items)
        names = list(self.fields)
        for key in value:
            if key not in self.fields:
                issues.add(join(path, key), f"unknown key; {suggest(str(key), names)}")
        resolved: dict[str, Any] = {}
        for name, spec in self.fields.items():
            if name in value:
                resolved[name] = spec.check(value[name], join(path, name), issues)
            elif spec.required:
                issues.add(join(path, name), f"missing required key ({spec.expected()})")
            else:
                resolved[name] = spec.default()
        # Cross-key rules only make sense once every key they read is valid on its own.
        found = issues.items[before:]
        for validate in self.validators:
            blocked = (validate.blocked_by(path, found) if isinstance(validate, Rule)
                       else bool(found))
            if not blocked:
                validate(resolved, path, issues)
        return resolved


def reference(section: Section, path: str = "") -> list[tuple[str, str, str, str]]:
    """Rows (key path, expected, default, doc) describing every key, for the README."""
    rows = []
    for name, spec in section.fields.items():
        key = join(path, name)
        if isinstance(spec, Section):
            if spec.optional:
                rows.append((key, "a mapping (the keys below) or null", "null", spec.doc))
            rows.extend(reference(spec, key))
            continue
        if spec.required:
            default = "required"
        else:
            value = spec.default()
            default = json.dumps(value) if isinstance(value, (list, dict)) else show(value)
        rows.append((key, spec.expected(), default, spec.doc))
    return rows


class TaggedUnion(Section):
    """A section whose allowed keys depend on the value of one tag key.

    Three config sections work this way: `optimizer:` (tag `name`), `task: optbench` (tag
    `data.problem`, which decides the `data` and `model` keys) and a bench claim (tag `kind`).
    This class holds what they share. The tag picks a variant, a whole Section checked in
    place of this one, so the resolved config holds exactly that variant's keys. A key of
    another variant is reported with the `foreign` template (placeholders `{owners}`, the
    variants that have it; `{tag}`; `{part}`) and dropped before the variant checks the rest;
    a key no variant has is left to the variant's own "unknown key" report.

    `tag` is a key path; its spec (choices, default, or required) is the one in `fields`.
    `parts` are the subsections whose keys depend on the tag; none: this section's own keys.
    `unknown` words an unknown tag (placeholders `{tag}`, `{suggestion}`); without it the tag's
    spec reports it. `fields` only documents (the config reference); variants do the checking.
    """

    def __init__(self, fields: dict[str, Spec], doc: str, *, tag: str,
                 variants: Mapping[str, Section], foreign: str, parts: tuple[str, ...] = (),
                 unknown: str | None = None) -> None:
        super().__init__(fields, doc)
        self.tag, self.variants, self.foreign = tag, variants, foreign
        self.parts, self.unknown = parts, unknown
        spec: Any = self
        for key in tag.split("."):
            spec = spec.fields[key]
        self.tag_spec: Spec = spec

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if not isinstance(value, Mapping):
            return self._reject(value, path, issues)
        *outer, last = self.tag.split(".")
        holder = value
        for key in outer:
            holder = holder.get(key)
            holder = holder if isinstance(holder, Mapping) else {}
        where = join(path, self.tag)
        if last in holder:
            tag = holder[last]
        elif self.tag_spec.required:
            issues.add(where, f"missing required key ({self.tag_spec.expected()})")
            return self._check_unknown(value, path, issues)
        else:
            tag = self.tag_spec.default()
        if not isinstance(tag, str) or tag not in self.variants:
            if self.unknown is None:
                self.tag_spec.check(tag, where, issues)
            else:
                suggestion = suggest(str(tag), list(self.variants))
                issues.add(where, self.unknown.format(tag=tag, suggestion=suggestion))
            return self._check_unknown(value, path, issues)
        return self.variants[tag].check(self._drop_foreign(value, tag, path, issues), path,
                                        issues)

    def _check_unknown(self, value: Mapping, path: str, issues: Issues) -> Any:
        """The result when no variant applies: the value as written (optbench overrides this
        to still check the keys that do not depend on the tag)."""
        return value

    def _drop_foreign(self, value: Mapping, tag: str, path: str, issues: Issues) -> dict:
        """`value` without the keys of other variants, each reported."""
        value = dict(value)
        for part in self.parts or ("",):
            section = value.get(part) if part else value
            if not isinstance(section, Mapping):
                continue
            keys = {name: _part(variant, part) for name, variant in self.variants.items()}
            kept = {}
            for key, item in section.items():
                owners = [name for name, own in keys.items() if key in own]
                if key in keys[tag] or not owners:
                    kept[key] = item
                    continue
                issues.add(join(path, f"{part}.{key}" if part else key),
                           self.foreign.format(owners=", ".join(owners), tag=tag, part=part))
            if part:
                value[part] = kept
            else:
                value = kept
        return value


def _part(section: Section, part: str) -> dict[str, Spec]:
    return section.fields[part].fields if part else section.fields


def merged_fields(sections: Iterable[Mapping[str, Spec]]) -> dict[str, Spec]:
    """Every key of `sections`, with the spec of the first that has it: a union's `fields`."""
    merged: dict[str, Spec] = {}
    for fields in sections:
        for key, spec in fields.items():
            merged.setdefault(key, spec)
    return merged
