"""A bench file to its grid of runs: one ordinary `task: optbench` config per cell and seed.

Every cell's config is built and checked (with `check_config`, as `blogml train` would)
before anything runs; all problems of the file are raised together in one ConfigError.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blogml.bench.schema import BENCH, TASK_PARTS, optimizers_of
from blogml.config.loader import LoadedConfig, check_config, read_yaml
from blogml.config.schema import Issues
from blogml.errors import ConfigError, ConfigIssue


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    problem: str
    optimizer: str
    seed: int
    run_dir: Path
    loaded: LoadedConfig

    @property
    def name(self) -> str:
        return f"{self.problem}/{self.optimizer}/seed{self.seed}"

    @property
    def values(self) -> dict[str, Any]:
        return self.loaded.values


@dataclass(frozen=True)
class Bench:
    source: str
    values: dict[str, Any]
    out_dir: Path
    cells: list[Cell]

    def problem(self, name: str) -> dict[str, Any]:
        return self.values["problems"][name]

    def cells_of(self, problem: str, optimizer: str | None = None) -> list[Cell]:
        return [c for c in self.cells
                if c.problem == problem and optimizer in (None, c.optimizer)]


def cell_config(values: dict[str, Any], problem: str, optimizer: str, seed: int,
                run_dir: Path) -> dict[str, Any]:
    """The optbench config of one run (what `blogml train` would be given)."""
    section = values["problems"][problem]
    return {"task": "optbench", "seed": seed, "run_dir": str(run_dir),
            "backend": values["backend"], **{part: section[part] for part in TASK_PARTS},
            "optimizer": values["optimizers"][optimizer]}


def load_bench(path: str) -> Bench:
    """Read and check a bench file and every run it describes; ConfigError lists all problems."""
    raw, reason = read_yaml(path)
    if raw is None:
        raise ConfigError([ConfigIssue(path, "", reason)])
    if "task" in raw and "bench" not in raw:
        raise ConfigError([ConfigIssue(path, "", f"is a training config (task: {raw['task']}), "
                                                 "not a bench file (bench: optimizers); train "
                                                 "it with `blogml train`")])
    issues = Issues()
    values = BENCH.check(raw, "", issues)
    if issues:
        raise ConfigError(_unique(ConfigIssue(path, p, m) for p, m in issues.items))
    out_dir = Path(values["out_dir"].format(config=Path(path).stem))
    cells, problems = [], []
    for problem in values["problems"]:
        for optimizer in optimizers_of(values, problem):
            for seed in values["seeds"]:
                run_dir = out_dir / "runs" / problem / optimizer / f"seed{seed}"
                source = f"{path} [{problem}/{optimizer}/seed{seed}]"
                resolved, cell_issues = check_config(
                    cell_config(values, problem, optimizer, seed, run_dir), source)
                # Each section was checked on its own above; what remains are rules across
                # sections (problem x optimizer), reported once for all seeds.
                problems.extend(ConfigIssue(path, f"problems.{problem} with optimizers."
                                                  f"{optimizer}", f"{i.path}: {i.message}")
                                for i in cell_issues)
                cells.append(Cell(problem, optimizer, seed, run_dir,
                                  LoadedConfig(source, resolved)))
    if problems:
        raise ConfigError(_unique(problems))
    return Bench(path, values, out_dir, cells)


def _unique(issues: Iterable[ConfigIssue]) -> list[ConfigIssue]:
    seen, unique = set(), []
    for issue in issues:
        if str(issue) not in seen:
            seen.add(str(issue))
            unique.append(issue)
    return unique
