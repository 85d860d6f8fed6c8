"""A bench file to its grid of runs: one ordinary `task: optbench` config per cell and seed.

Every cell's config is built and checked (with `check_config`, as `blogml train` would)
before anything runs; all problems of the file are found in one pass and reported together:
the sections, the names they refer to, and the runs of every sound problem x optimizer pair.

Each problem x optimizer pair has its `default` runs (the optimizer section as written, on
`seeds`); an optimizer with a `search:` space also has its `trial` runs (the space's
quasirandom points, on `tuning_seeds`) and, once those have ended, its `tuned` runs (the
best point, on `seeds`; a seed that was a tuning seed reuses that trial's run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blogml.comparison.schema import (
    BENCH,
    TASK_PARTS,
    TUNING_KEYS,
    Sound,
    check_references,
    optimizers_of,
)
from blogml.comparison.search import best_trial, points, with_point
from blogml.config.loader import LoadedConfig, read_yaml
from blogml.config.schema import Issues
from blogml.errors import ConfigError, ConfigIssue, unique_issues
from blogml.tasks.configs import check_config


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    problem: str
    optimizer: str
    seed: int
    run_dir: Path
    loaded: LoadedConfig
    variant: str = "default"
    trial: int | None = None  # the point's index in the search sequence (trial, tuned)
    point: tuple[tuple[str, Any], ...] = ()  # the searched keys' values

    @property
    def name(self) -> str:
        middle = {"default": "", "trial": f"trial{self.trial}/", "tuned": "tuned/"}
        return f"{self.problem}/{self.optimizer}/{middle[self.variant]}seed{self.seed}"

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

    def cells_of(self, problem: str, optimizer: str | None = None,
                 variant: str = "default") -> list[Cell]:
        return [c for c in self.cells if c.problem == problem and c.variant == variant
                and optimizer in (None, c.optimizer)]

    def tuned(self, optimizer: str) -> bool:
        return self.values["optimizers"][optimizer]["search"] is not None


def optimizer_section(values: dict[str, Any], optimizer: str,
                      point: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An optimizer entry without its tuning keys, with a search point's values set."""
    entry = values["optimizers"][optimizer]
    return with_point({k: v for k, v in entry.items() if k not in TUNING_KEYS}, point or {})


def cell_config(values: dict[str, Any], problem: str, optimizer: str, seed: int,
                run_dir: Path, point: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The optbench config of one run (what `blogml train` would be given)."""
    section = values["problems"][problem]
    return {"task": "optbench", "seed": seed, "run_dir": str(run_dir),
            "backend": values["backend"], **{part: section[part] for part in TASK_PARTS},
            "optimizer": optimizer_section(values, optimizer, point)}


def search_points(values: dict[str, Any], optimizer: str) -> list[dict[str, Any]]:
    """The trial points of an optimizer with a search space (none without one)."""
    entry = values["optimizers"][optimizer]
    if entry["search"] is None:
        return []
    return points(entry["search"], entry["budget"], values["search_seed"])


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
    for problem, optimizer, seed, trial, point in _sound_cells(values, sound):
        cell, cell_issues = make_cell(path, values, out_dir, problem, optimizer, seed,
                                      "default" if trial is None else "trial", trial, point)
        # Each section was checked on its own above; what remains are rules across
        # sections (problem x optimizer), reported once for all seeds.
        crossed.extend(ConfigIssue(path, f"problems.{problem} with optimizers.{optimizer}",
                                   f"{i.path}: {i.message}") for i in cell_issues)
        if cell is not None:
            cells.append(cell)
    return Bench(path, values, out_dir, cells), unique_issues(problems) + unique_issues(crossed)


def make_cell(path: str, values: dict[str, Any], out_dir: Path, problem: str, optimizer: str,
              seed: int, variant: str = "default", trial: int | None = None,
              point: Mapping[str, Any] | None = None) -> tuple[Cell | None, list[ConfigIssue]]:
    """One run of the grid, its config checked as `blogml train` checks it."""
    folder = out_dir / "runs" / problem / optimizer
    if variant != "default":
        folder /= "tuned" if variant == "tuned" else f"trial{trial}"
    run_dir = folder / f"seed{seed}"
    point = point or {}
    cell = Cell(problem, optimizer, seed, run_dir, LoadedConfig("", {}), variant, trial,
                tuple(point.items()))
    source = f"{path} [{cell.name}]"
    resolved, issues = check_config(
        cell_config(values, problem, optimizer, seed, run_dir, point), source)
    if issues:
        return None, issues
    return dataclasses.replace(cell, loaded=LoadedConfig(source, resolved)), []


def _sound_cells(values: dict[str, Any], sound: Sound) -> Iterable[tuple]:
    """(problem, optimizer, seed, trial, point) of every run whose own sections are sound
    (all of them, in a file without mistakes): the defaults, then the trials (trial None:
    a default run)."""
    if not all(sound.sound(key) for key in ("out_dir", "backend", "search_seed")) or not all(
            sound.usable(key) for key in ("seeds", "tuning_seeds", "problems", "optimizers")):
        return
    seeds = _sound_seeds(values, sound, "seeds")
    tuning_seeds = _sound_seeds(values, sound, "tuning_seeds")
    for problem in values["problems"]:
        if not sound.sound(f"problems.{problem}"):
            continue
        for optimizer in optimizers_of(values, problem):
            if sound.sound(f"optimizers.{optimizer}"):
                for seed in seeds:
                    yield problem, optimizer, seed, None, {}
                for trial, point in enumerate(search_points(values, optimizer)):
                    for seed in tuning_seeds:
                        yield problem, optimizer, seed, trial, point


def _sound_seeds(values: dict[str, Any], sound: Sound, key: str) -> list[int]:
    return list(dict.fromkeys(seed for i, seed in enumerate(values[key])
                              if sound.sound(f"{key}[{i}]")))


def tuned_cells(bench: Bench, score: Callable[[Cell], float | None]) -> list[Cell]:
    """The tuned runs of every tuned optimizer whose trials all ended: the best point by
    `score` (a trial's score is the mean over its tuning seeds; see `search.best_trial`)
    on every seed, a tuning seed's run being that trial's own."""
    cells = []
    for (problem, optimizer), trials in _trials(bench).items():
        mode = bench.problem(problem)["train"]["monitor_mode"]
        scores = [_mean([score(cell) for cell in seeds]) for seeds in trials]
        best = best_trial(scores, mode)
        if best is None:
            continue
        by_seed = {cell.seed: cell for cell in trials[best]}
        for seed in bench.values["seeds"]:
            if seed in by_seed:
                cells.append(dataclasses.replace(by_seed[seed], variant="tuned"))
                continue
            cell, issues = make_cell(bench.source, bench.values, bench.out_dir, problem,
                                     optimizer, seed, "tuned", best,
                                     dict(trials[best][0].point))
            if cell is not None:  # its point and problem were checked in the trials
                cells.append(cell)
    return cells


def _trials(bench: Bench) -> dict[tuple[str, str], list[list[Cell]]]:
    """(problem, optimizer) -> the trials in sequence order, each its runs over seeds."""
    grouped: dict[tuple[str, str], dict[int, list[Cell]]] = {}
    for cell in bench.cells:
        if cell.variant == "trial":
            grouped.setdefault((cell.problem, cell.optimizer), {}).setdefault(
                cell.trial, []).append(cell)
    return {pair: [trials[k] for k in sorted(trials)] for pair, trials in grouped.items()}


def _mean(values: list[float | None]) -> float | None:
    """The mean, or None when a value is missing (a trial that did not finish its seeds)."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)
