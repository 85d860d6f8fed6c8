"""The README stays true: its test command is CI's, and its config reference is the schema's
(every key, with its default and its range or choices)."""

from __future__ import annotations

import re

import pytest

from blogml.config.schema import reference
from blogml.tasks.optbench import problem_schema
from blogml.tasks.problems import PROBLEMS
from blogml.tasks.registry import TASKS
from tests.conftest import REPO

SHARED = "Keys every task shares"
EVERY_PROBLEM = "Keys of every problem"
# Shared rows whose default depends on the task: the README describes it in words (and, for
# optbench, gives each problem's in the problem table, checked below).
DESCRIBED = {"train.monitor": ("`val_` + one of the task's metrics",
                               "the task's (optbench: the problem's, below)"),
             "train.monitor_mode": ("one of min, max",
                                    "the task's, to suit its default `monitor`")}


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"```bash\n(.+?)\n```", readme)
    assert len(commands) >= 2
    assert commands[0].endswith("blogml train configs/quickstart.yaml")
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci_lines


def _cells(line: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def readme_tables() -> dict[str, dict[str, tuple[str, str]]]:
    """The key tables of README's "Config reference": {where: {key: (expected, default)}},
    where is the `###` heading or, under optbench, the problem line above the table."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("\n## Config reference\n"):]
    section = section[:section.index("\n## ", 1)]
    tables: dict[str, dict[str, tuple[str, str]]] = {}
    where, lines = "", iter(section.splitlines())
    for line in lines:
        if line.startswith("### "):
            where = line[4:].strip().strip("`")
        elif re.fullmatch(r"(`\w+`|Keys of every problem):", line):
            where = line[:-1].strip("`")
        elif line.startswith("|") and _cells(line) == ["key", "expected", "default", "meaning"]:
            assert where not in tables, f"two key tables under {where!r}"
            next(lines)  # |---|---|
            rows = tables[where] = {}
            for row in lines:
                if not row.startswith("|"):
                    break
                key, expected, default, _ = _cells(row)
                assert re.fullmatch(r"`[\w.]+`", key), f"{where}: bad key cell {key!r}"
                assert key[1:-1] not in rows, f"{where}: {key} twice"
                rows[key[1:-1]] = expected, default
    return tables


def schema_rows(schema) -> dict[str, tuple[str, str]]:
    """{key: (expected, default)} as the README writes them (a default in backticks)."""
    return {key: (expected, f"`{default}`") for key, expected, default, _ in reference(schema)}


@pytest.fixture
def tables(monkeypatch):
    # `backend` defaults to $KERAS_BACKEND; the README documents the default without it.
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    return readme_tables()


def test_readme_reference_rows_are_the_schemas_defaults_and_ranges(tables):
    shared = tables[SHARED]
    for key, row in DESCRIBED.items():
        assert shared.pop(key) == row
    for task in TASKS.values():
        rows = schema_rows(task.schema)
        for key, row in shared.items():
            assert rows.get(key) == row, f"README row {key} (shared) is not {task.name}'s"
        for key in DESCRIBED:
            assert rows.pop(key)[0].startswith("one of val_" if key == "train.monitor"
                                               else "one of min, max")
        if task.name == "optbench":
            continue  # its data/model keys depend on the problem: the next test
        own = tables[f"task: {task.name}"]
        for key, row in own.items():
            assert key not in shared, f"{key} is in both the shared and the {task.name} table"
            assert rows.get(key) == row, (f"README row {key} ({task.name}) says {row}; "
                                          f"the schema: {rows.get(key)}")
        missing = set(rows) - set(shared) - set(own)
        assert not missing, f"README lacks {task.name} keys {sorted(missing)}"


def test_readme_reference_rows_of_each_optbench_problem_are_that_problems(tables):
    shared, every = tables[SHARED], tables[EVERY_PROBLEM]
    per_problem = {name: schema_rows(problem_schema(problem))
                   for name, problem in PROBLEMS.items()}
    # `a` / `b` / `c` / `d`: one default per problem, in the order of PROBLEMS; `a`: all alike.
    for key, (expected, defaults) in every.items():
        defaults = defaults.split(" / ") if " / " in defaults else [defaults] * len(PROBLEMS)
        for name, default in zip(PROBLEMS, defaults, strict=True):
            assert per_problem[name][key] == (expected, default), f"{key} of {name}"
    for name, rows in per_problem.items():
        own = dict(tables[name])
        if name == "rosenbrock":
            # The README says what the validator adds: odd dims are rejected (tested below).
            assert own["data.dim"] == ("an even integer >= 2", "`2`")
            own["data.dim"] = ("an integer >= 2", "`2`")
        for key, row in own.items():
            assert rows.get(key) == row, f"README row {key} ({name}) says {row}; " \
                                         f"the schema: {rows.get(key)}"
        documented = set(shared) | set(every) | set(own) | set(DESCRIBED)
        assert set(rows) <= documented, f"README lacks {name} keys {set(rows) - documented}"
        assert set(own) <= {k for k in rows if k.startswith(("data.", "model."))}

    # The problem table's "(monitor, mode)" is each problem's default train.monitor.
    text = (REPO / "README.md").read_text()
    for name, problem in PROBLEMS.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` "))
        assert row.rstrip(" |").endswith(f"(`{problem.monitor}`, {problem.monitor_mode})")
        monitor = problem_schema(problem).fields["train"].fields
        assert (monitor["monitor"].default(), monitor["monitor_mode"].default()) == (
            problem.monitor, problem.monitor_mode)

    from blogml.config.schema import Issues

    issues = Issues()
    TASKS["optbench"].schema.check({"task": "optbench", "data": {"problem": "rosenbrock",
                                                                 "dim": 3}}, "", issues)
    assert [where for where, _ in issues.items] == ["data.dim"]
