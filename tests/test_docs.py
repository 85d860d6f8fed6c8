"""The README stays true: its test command is CI's, and it documents every config key."""

from __future__ import annotations

import re

from blogml.config.schema import reference
from blogml.runners.registry import TASKS
from tests.conftest import REPO


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"```bash\n(.+?)\n```", readme)
    assert len(commands) >= 2
    assert commands[0].endswith("blogml train configs/quickstart.yaml")
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci_lines


def test_readme_documents_every_config_key_of_every_task():
    readme = (REPO / "README.md").read_text()
    for task in TASKS.values():
        for key, _, _, _ in reference(task.schema):
            assert f"| `{key}` |" in readme, f"README lacks config key {key} ({task.name})"
