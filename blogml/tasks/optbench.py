"""Config schema of `task: optbench`, whose keys depend on the chosen `data.problem`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blogml.config.common import task_schema, train_section
from blogml.config.schema import Issues, Section, join
from blogml.tasks.problems import DEFAULT_PROBLEM, PROBLEM_KEY, PROBLEMS, Problem

PARTS = ("data", "model")  # the sections whose keys depend on the problem


def problem_schema(problem: Problem) -> Section:
    """The whole optbench schema for one problem: its data/model keys, its metrics."""
    data = Section({"problem": PROBLEM_KEY, **problem.data}, problem.doc,
                   validators=list(problem.validators))
    return task_schema("optbench", data=data, model=Section(problem.model, problem.doc),
                       metrics=list(problem.metrics), monitor=problem.monitor,
                       monitor_mode=problem.monitor_mode)


class OptbenchSchema(Section):
    """`task: optbench`: `data.problem` picks the allowed `data`/`model` keys and metrics.

    A config is checked against its problem's own schema, so `config show` lists exactly the
    keys that problem uses. A key (or monitored metric) that belongs to another problem is
    reported as such, naming the problems it belongs to, instead of as merely unknown.
    `fields` is the union over all problems (the first problem declaring a key gives its
    default): it exists for the config reference, which documents every key.
    """

    def __init__(self) -> None:
        self.schemas = {name: problem_schema(problem) for name, problem in PROBLEMS.items()}
        fields = dict(self.schemas[DEFAULT_PROBLEM].fields)
        for part in PARTS:
            merged: dict[str, Any] = {}
            for schema in self.schemas.values():
                for key, spec in schema.fields[part].fields.items():
                    merged.setdefault(key, spec)
            fields[part] = Section(merged, f"problem-dependent `{part}` keys")
        metrics = list(dict.fromkeys(m for p in PROBLEMS.values() for m in p.metrics))
        default = PROBLEMS[DEFAULT_PROBLEM]
        fields["train"] = train_section(metrics, default.monitor, default.monitor_mode)
        super().__init__(fields, "task optbench")

    def monitors(self, problem: str) -> list[str]:
        """What `train.monitor` may name for `problem`."""
        return self.schemas[problem].fields["train"].fields["monitor"].choices

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if not isinstance(value, Mapping):
            return self._reject(value, path, issues)
        data = value.get("data")
        name = (data if isinstance(data, Mapping) else {}).get("problem", DEFAULT_PROBLEM)
        if not isinstance(name, str) or name not in PROBLEMS:
            PROBLEM_KEY.check(name, join(path, "data.problem"), issues)
            return self._check_without_problem(value, path, issues)
        return self.schemas[name].check(self._drop_foreign(value, name, path, issues), path,
                                        issues)

    def _check_without_problem(self, value: Mapping, path: str, issues: Issues) -> Any:
        """With an unknown problem, still report mistakes in the keys that do not depend on it."""
        scratch = Issues()
        resolved = self.schemas[DEFAULT_PROBLEM].check(value, path, scratch)
        dependent = [join(path, key) for key in (*PARTS, "train.monitor")]
        for where, message in scratch.items:
            if not any(where == d or where.startswith((d + ".", d + "[")) for d in dependent):
                issues.add(where, message)
        return resolved

    def _drop_foreign(self, value: Mapping, name: str, path: str, issues: Issues) -> dict:
        """Report and remove keys of other problems (truly unknown keys are left to Section)."""
        value = dict(value)
        for part in PARTS:
            section = value.get(part)
            if not isinstance(section, Mapping):
                continue
            own = self.schemas[name].fields[part].fields
            kept = {}
            for key, item in section.items():
                owners = [p for p, s in self.schemas.items() if key in s.fields[part].fields]
                if key in own or not owners:
                    kept[key] = item
                    continue
                issues.add(join(path, f"{part}.{key}"),
                           f"is a {part} key of {', '.join(owners)}, not of {name}; remove it "
                           "or change data.problem")
            value[part] = kept
        train = value.get("train")
        monitor = train.get("monitor") if isinstance(train, Mapping) else None
        if isinstance(monitor, str) and monitor not in self.monitors(name):
            owners = [p for p in self.schemas if monitor in self.monitors(p)]
            if owners:
                issues.add(join(path, "train.monitor"),
                           f"{monitor} is a metric of {', '.join(owners)}, not of {name}; "
                           f"expected one of: {', '.join(self.monitors(name))}")
                value["train"] = {k: v for k, v in train.items() if k != "monitor"}
        return value


SCHEMA = OptbenchSchema()
