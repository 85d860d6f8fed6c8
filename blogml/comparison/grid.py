"""A bench file to its grid of runs: one ordinary `task: optbench` config per cell and seed.

Every cell's config is built and checked (with `check_config`, as `blogml train` would)
before anything runs; all problems of the file are found in one pass and reported together:
the sections, the names they refer to, and the runs of every sound problem x optimizer pair.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blogml.comparison.schema import BENCH, TASK_PARTS, Sound, check_references, optimizers_of
from blogml.config.loader import LoadedConfig, read_yaml
from blogml.config.schema import Issues
from blogml.errors import ConfigError, ConfigIssue
from blogml.tasks.configs import check_config


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
    bench, issues = check_bench(path)
    if issues:
        raise ConfigError(issues)
    return bench


def check_bench(path: str) -> tuple[Bench, list[ConfigIssue]]:
    """A bench file's grid and every mistake in it. A file with mistakes still gets the runs
    of its sound problem x optimizer pairs, so that they are checked (and can be planned)
    in the same round; its other cells are left out."""
    raw, reason = read_yaml(path)
    if raw is None:
        return Bench(path, {}, Path(), []), [ConfigIssue(path, "", reason)]
    if "task" in raw and "bench" not in raw:
        return Bench(path, {}, Path(), []), [ConfigIssue(
            path, "", f"is a training config (task: {raw['task']}), not a bench file (bench: "
                      "optimizers); train it with `blogml train`")]
    issues = Issues()
    values = BENCH.check(raw, "", issues)
    sound = Sound(issues)
    check_references(values, sound, issues)
    problems = [ConfigIssue(path, p, m) for p, m in issues.items]
    out_dir = (Path(values["out_dir"].format(config=Path(path).stem))
               if sound.sound("out_dir") else Path())
    cells, crossed = [], []
    for problem, optimizer, seed in _sound_cells(values, sound):
        run_dir = out_dir / "runs" / problem / optimizer / f"seed{seed}"
        source = f"{path} [{problem}/{optimizer}/seed{seed}]"
        resolved, cell_issues = check_config(
            cell_config(values, problem, optimizer, seed, run_dir), source)
        # Each section was checked on its own above; what remains are rules across
        # sections (problem x optimizer), reported once for all seeds.
        crossed.extend(ConfigIssue(path, f"problems.{problem} with optimizers.{optimizer}",
                                   f"{i.path}: {i.message}") for i in cell_issues)
        if not cell_issues:
            cells.append(Cell(problem, optimizer, seed, run_dir, LoadedConfig(source, resolved)))
    return Bench(path, values, out_dir, cells), _unique(problems) + _unique(crossed)


def _sound_cells(values: dict[str, Any], sound: Sound) -> Iterable[tuple[str, str, int]]:
    """(problem, optimizer, seed) of every run whose own sections are sound (all of them,
    in a file without mistakes)."""
    if not all(sound.sound(key) for key in ("out_dir", "backend")) or not all(
            sound.usable(key) for key in ("seeds", "problems", "optimizers")):
        return
    seeds = list(dict.fromkeys(seed for i, seed in enumerate(values["seeds"])
                               if sound.sound(f"seeds[{i}]")))
    for problem in values["problems"]:
        if not sound.sound(f"problems.{problem}"):
            continue
        for optimizer in optimizers_of(values, problem):
            if sound.sound(f"optimizers.{optimizer}"):
                for seed in seeds:
                    yield problem, optimizer, seed


def _unique(issues: Iterable[ConfigIssue]) -> list[ConfigIssue]:
    """Each issue once (the same text from two cells of the grid), in first-seen order."""
    return list({str(issue): issue for issue in issues}.values())
