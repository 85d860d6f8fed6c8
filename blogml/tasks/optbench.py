"""Config schema of `task: optbench`, whose keys depend on the chosen `data.problem`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blogml.config.common import task_schema, train_section
from blogml.config.schema import Issues, Section, TaggedUnion, join, merged_fields
from blogml.tasks.problems import DEFAULT_PROBLEM, PROBLEM_KEY, PROBLEMS, Problem

PARTS = ("data", "model")  # the sections whose keys depend on the problem


def problem_schema(problem: Problem) -> Section:
    """The whole optbench schema for one problem: its data/model keys, its metrics."""
    data = Section({"problem": PROBLEM_KEY, **problem.data}, problem.doc,
                   validators=list(problem.validators))
    return task_schema("optbench", data=data, model=Section(problem.model, problem.doc),
                       metrics=list(problem.metrics), monitor=problem.monitor,
                       monitor_mode=problem.monitor_mode)


class OptbenchSchema(TaggedUnion):
    """`task: optbench`: `data.problem` picks the allowed `data`/`model` keys and metrics.

    A config is checked against its problem's own schema (see `TaggedUnion`), so `config show`
    lists exactly the keys that problem uses; a monitored metric of another problem is
    reported as such too. `fields` is the union over all problems (the first problem
    declaring a key gives its default): it exists for the config reference.
    """

    def __init__(self) -> None:
        variants = {name: problem_schema(problem) for name, problem in PROBLEMS.items()}
        fields = dict(variants[DEFAULT_PROBLEM].fields)
        for part in PARTS:
            fields[part] = Section(merged_fields(s.fields[part].fields for s in variants.values()),
                                   f"problem-dependent `{part}` keys")
        metrics = list(dict.fromkeys(m for p in PROBLEMS.values() for m in p.metrics))
        default = PROBLEMS[DEFAULT_PROBLEM]
        fields["train"] = train_section(metrics, default.monitor, default.monitor_mode)
        super().__init__(fields, "task optbench", tag="data.problem", variants=variants,
                         parts=PARTS, foreign="is a {part} key of {owners}, not of {tag}; "
                                              "remove it or change data.problem")

    def monitors(self, problem: str) -> list[str]:
        """What `train.monitor` may name for `problem`."""
        return self.variants[problem].fields["train"].fields["monitor"].choices

    def _check_unknown(self, value: Mapping, path: str, issues: Issues) -> Any:
        """With an unknown problem, still report mistakes in the keys that do not depend on it."""
        scratch = Issues()
        resolved = self.variants[DEFAULT_PROBLEM].check(value, path, scratch)
        dependent = [join(path, key) for key in (*PARTS, "train.monitor")]
        for where, message in scratch.items:
            if not any(where == d or where.startswith((d + ".", d + "[")) for d in dependent):
                issues.add(where, message)
        return resolved

    def _drop_foreign(self, value: Mapping, name: str, path: str, issues: Issues) -> dict:
        """Also a `train.monitor` that names another problem's metric."""
        value = super()._drop_foreign(value, name, path, issues)
        train = value.get("train")
        monitor = train.get("monitor") if isinstance(train, Mapping) else None
        if isinstance(monitor, str) and monitor not in self.monitors(name):
            owners = [p for p in self.variants if monitor in self.monitors(p)]
            if owners:
                issues.add(join(path, "train.monitor"),
                           f"{monitor} is a metric of {', '.join(owners)}, not of {name}; "
                           f"expected one of: {', '.join(self.monitors(name))}")
                value["train"] = {k: v for k, v in train.items() if k != "monitor"}
        return value


SCHEMA = OptbenchSchema()
