"""The tuned optimizer benchmark: search points against a reference implementation, scaling,
time to target, performance profiles and their areas, and the pick of the best trial, each
on a hand-worked example; then a tuned bench end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import qmc

from blogml.comparison.grid import check_bench, tuned_cells
from blogml.comparison.profiles import area, curve, profile, ratios, time_to_target, times_of
from blogml.comparison.results import final_value
from blogml.comparison.search import (
    best_trial,
    halton,
    points,
    quasirandom,
    scale,
    with_point,
)
from tests.conftest import cli_env, run_blogml

INF = math.inf


def test_halton_is_scipys_unscrambled_sequence():
    for dims in (1, 2, 5):
        np.testing.assert_allclose(halton(64, dims), qmc.Halton(dims, scramble=False).random(64),
                                   rtol=0, atol=1e-15)


def test_the_scrambled_points_are_the_sequence_rotated_by_a_seeded_shift():
    shift = np.random.default_rng(7).random(3)
    np.testing.assert_array_equal(quasirandom(10, 3, 7), (halton(10, 3) + shift) % 1.0)
    assert not np.array_equal(quasirandom(10, 3, 7), quasirandom(10, 3, 8))
    unit = quasirandom(256, 2, 0)
    assert unit.min() >= 0 and unit.max() < 1
    # Low discrepancy survives the rotation: every cell of a 4x4 grid gets 256/16 points.
    cells = np.floor(unit * 4).astype(int)
    counts = np.bincount(cells[:, 0] * 4 + cells[:, 1], minlength=16)
    assert counts.min() >= 14 and counts.max() <= 18


def test_each_kind_of_range_is_scaled_as_worked_by_hand():
    log = {"log_uniform": [1e-4, 1e-2]}
    assert scale(0.0, log) == pytest.approx(1e-4, rel=1e-12)
    assert scale(0.5, log) == pytest.approx(1e-3, rel=1e-12)  # the geometric middle
    assert scale(0.75, log) == pytest.approx(10 ** -2.5, rel=1e-12)
    assert scale(0.25, {"uniform": [0.8, 1.0]}) == pytest.approx(0.85)
    choice = {"choice": [5, 10, 20]}
    assert [scale(u, choice) for u in (0.0, 0.33, 0.34, 0.66, 0.67, 0.999)] == [
        5, 5, 10, 10, 20, 20]


def test_every_optimizer_with_the_same_space_gets_the_same_points():
    space = {"learning_rate": {"log_uniform": [1e-4, 1e-1]}, "beta_1": {"uniform": [0.8, 0.99]}}
    first, second = points(space, 8, 0), points(dict(space), 8, 0)
    assert first == second and len(first) == 8
    unit = quasirandom(8, 2, 0)
    assert first[3]["learning_rate"] == pytest.approx(1e-4 * 1000 ** unit[3, 0], rel=1e-12)
    assert first[3]["beta_1"] == pytest.approx(0.8 + 0.19 * unit[3, 1], rel=1e-12)


def test_a_point_sets_dotted_keys_of_an_optimizer_section():
    section = {"name": "adam", "learning_rate": 1e-3, "lookahead": {"k": 5, "alpha": 0.5}}
    assert with_point(section, {"learning_rate": 3e-4, "lookahead.alpha": 0.8}) == {
        "name": "adam", "learning_rate": 3e-4, "lookahead": {"k": 5, "alpha": 0.8}}
    assert section["lookahead"]["alpha"] == 0.5  # the section itself is left alone


def test_time_to_target_is_the_first_validation_that_reaches_it():
    events = [{"event": "val", "step": 10, "time": 1.5, "accuracy": 0.5, "loss": 1.2},
              {"event": "val", "step": 20, "time": 3.0, "accuracy": "nan", "loss": 0.8},
              {"event": "val", "step": 30, "time": 4.5, "accuracy": 0.9, "loss": 0.7},
              {"event": "val", "step": 40, "time": 6.0, "accuracy": 0.95, "loss": 0.6}]
    assert time_to_target(events, "val_accuracy", 0.9, "max") == (30, 4.5)  # at, not above
    assert time_to_target(events, "val_loss", 0.8, "min") == (20, 3.0)
    assert time_to_target(events, "val_accuracy", 0.99, "max") == (None, None)


def test_the_time_to_target_column_reads_a_runs_metrics_file(tmp_path):
    from blogml.comparison.results import evaluations

    run = tmp_path / "run"
    run.mkdir()
    lines = [{"event": "train", "step": 5, "loss": 0.1, "time": 0.5},  # a train loss: not it
             {"event": "val", "step": 10, "suboptimality": 0.4, "time": 1.0},
             {"event": "val", "step": 20, "suboptimality": 0.09, "time": 2.25}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert time_to_target(evaluations(run), "val_suboptimality", 0.1, "min") == (20, 2.25)


# A hand-worked table: seconds to target on three problems (inf: never reached).
TIMES = {"p1": {"A": 10.0, "B": 20.0, "C": INF},
         "p2": {"A": 30.0, "B": 15.0, "C": 45.0},
         "p3": {"A": INF, "B": INF, "C": INF}}  # solved by no one: counts against all


def test_performance_profile_and_area_worked_by_hand():
    assert ratios(TIMES) == {"p1": {"A": 1.0, "B": 2.0, "C": INF},
                             "p2": {"A": 2.0, "B": 1.0, "C": 3.0},
                             "p3": {"A": INF, "B": INF, "C": INF}}
    assert [profile(TIMES, "A", tau) for tau in (1, 1.99, 2, 4)] == [1 / 3, 1 / 3, 2 / 3, 2 / 3]
    assert profile(TIMES, "C", 2.9) == 0 and profile(TIMES, "C", 3) == 1 / 3
    # Area from 1 to 4, over 3: A counts (4 − 1) for p1 and (4 − 2) for p2, of 3 × 3.
    assert area(TIMES, "A") == pytest.approx(5 / 9)
    assert area(TIMES, "B") == pytest.approx(5 / 9)
    assert area(TIMES, "C") == pytest.approx(1 / 9)
    assert area({"p": {"A": 1.0, "B": 5.0}}, "A") == 1.0  # the fastest everywhere
    assert curve(TIMES, "A") == [(1.0, 1 / 3), (2.0, 2 / 3), (4.0, 2 / 3)]


def test_profile_times_are_medians_over_seeds_with_misses_infinite():
    def row(problem, optimizer, seconds, variant="tuned"):
        return {"problem": problem, "optimizer": optimizer, "variant": variant,
                "target_metric": "val_accuracy", "seconds_to_target": seconds}
    rows = [row("p", "A", 1.0), row("p", "A", 3.0), row("p", "A", None),
            row("p", "B", None), row("p", "B", None), row("p", "B", 2.0),
            row("p", "A", 0.1, "default"),
            {**row("q", "A", 1.0), "target_metric": None}]  # no target: not a problem here
    assert times_of(rows, "tuned") == {"p": {"A": 3.0, "B": INF}}


def test_the_best_trial_breaks_ties_by_the_earlier_point_and_skips_missing_scores():
    assert best_trial([0.5, 0.3, 0.3, None, math.nan], "min") == 1
    assert best_trial([0.5, 0.3, 0.5], "max") == 0
    assert best_trial([None, math.inf, 0.2], "min") == 2
    assert best_trial([None, None], "max") is None


TUNED_BENCH = {
    "bench": "optimizers", "out_dir": "out/{config}", "seeds": [0, 1, 2], "tuning_seeds": [0, 1],
    "problems": {"quad": {"data": {"problem": "noisy_quadratic", "dim": 4, "num_train": 64,
                                   "num_val": 16, "num_test": 16},
                          "train": {"epochs": 1, "steps_per_epoch": 20, "batch_size": 8,
                                    "log_every": 5, "eval_every": 5},
                          "target": {"metric": "val_suboptimality", "value": 0.5}}},
    "optimizers": {"adam": {"name": "adam", "learning_rate": 1.0e-2,
                            "search": {"learning_rate": {"log_uniform": [1.0e-3, 1.0e-1]}},
                            "budget": 3}},
}


def test_a_tuned_bench_plans_defaults_and_trials_then_tuned_runs_from_the_best(tmp_path,
                                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(TUNED_BENCH))
    bench, issues = check_bench("b.yaml")
    assert issues == []
    assert [c.name for c in bench.cells] == [
        "quad/adam/seed0", "quad/adam/seed1", "quad/adam/seed2",
        *(f"quad/adam/trial{k}/seed{s}" for k in range(3) for s in (0, 1))]
    trial_rates = [c.values["optimizer"]["learning_rate"] for c in bench.cells[3::2]]
    expected = [p["learning_rate"] for p in points(
        TUNED_BENCH["optimizers"]["adam"]["search"], 3, 0)]
    assert trial_rates == pytest.approx(expected)
    # Trial scores (final val_suboptimality, mean over the tuning seeds): 0.3, 0.2, 0.2.
    finals = {0: (0.4, 0.2), 1: (0.1, 0.3), 2: (0.3, 0.1)}
    for cell in bench.cells[3:]:
        _fake_finished_run(cell.run_dir, finals[cell.trial][cell.seed])
    tuned = tuned_cells(bench, final_value)
    assert [c.name for c in tuned] == ["quad/adam/tuned/seed0", "quad/adam/tuned/seed1",
                                       "quad/adam/tuned/seed2"]
    assert {c.trial for c in tuned} == {1}  # trial 1 ties trial 2 and is the earlier point
    # Seeds 0 and 1 were tuning seeds: their tuned runs are trial 1's own runs.
    assert [str(c.run_dir) for c in tuned] == ["out/b/runs/quad/adam/trial1/seed0",
                                               "out/b/runs/quad/adam/trial1/seed1",
                                               "out/b/runs/quad/adam/tuned/seed2"]
    assert tuned[2].values["optimizer"]["learning_rate"] == pytest.approx(expected[1])
    assert tuned[2].values["seed"] == 2


def _fake_finished_run(run_dir: Path, final: float) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": "finished"}))
    (run_dir / "metrics.jsonl").write_text(
        json.dumps({"event": "val", "step": 5, "suboptimality": 9.0}) + "\n"
        + json.dumps({"event": "val", "step": 20, "suboptimality": final}) + "\n")


@pytest.mark.parametrize("search, expected", [
    ({"learning_rat": {"log_uniform": [1e-3, 1e-1]}},
     "optimizers.adam.search.learning_rat: the point learning_rat=0.001 of this space: "
     "unknown key; did you mean 'learning_rate'?"),
    ({"learning_rate": {"log_uniform": [0, 1e-1]}},
     "optimizers.adam.search.learning_rate.log_uniform: must be [LOW, HIGH] with 0 < LOW < "
     "HIGH"),
    ({"beta_1": {"uniform": [0.9, 1.2]}},
     "optimizers.adam.search.beta_1: the point beta_1=1.2 of this space: must be a number >= 0 "
     "and <= 1, got 1.2"),
    ({"learning_rate": {"normal": [0, 1]}},
     "optimizers.adam.search.learning_rate: must be one of {log_uniform: [A, B]}, "
     "{uniform: [A, B]}, {choice: [V, ...]}"),
])
def test_a_bad_search_space_is_named_by_its_key(tmp_path, monkeypatch, search, expected):
    monkeypatch.chdir(tmp_path)
    bench = json.loads(json.dumps(TUNED_BENCH))
    bench["optimizers"]["adam"]["search"] = search
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(bench))
    _, issues = check_bench("b.yaml")
    assert any(str(issue).startswith(f"b.yaml: {expected}") for issue in issues), issues


def _numbers(results: Path) -> list[list[str]]:
    """results.csv without its timing columns (wall-clock: not a function of the config)."""
    lines = [line.split(",") for line in results.read_text().splitlines()]
    timing = {lines[0].index(c) for c in ("seconds_to_target", "wall_seconds", "steps_per_sec")}
    return [[v for i, v in enumerate(line) if i not in timing] for line in lines]


@pytest.mark.slow
def test_a_tuned_bench_twice_is_byte_identical_and_a_killed_one_ends_with_the_same_numbers(
        tmp_path):
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(TUNED_BENCH))
    first = run_blogml(["bench", "optimizers", "b.yaml"], tmp_path)
    assert first.returncode == 0, first.stderr
    results = tmp_path / "out/b/results.csv"
    written = results.read_bytes()
    assert len(written.splitlines()) == 1 + 3 + 6 + 3  # defaults, trials, tuned
    again = run_blogml(["bench", "optimizers", "b.yaml"], tmp_path)
    assert again.returncode == 0 and results.read_bytes() == written  # every run reused

    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "b.yaml").write_text(yaml.safe_dump(TUNED_BENCH))
    process = subprocess.Popen([sys.executable, "-m", "blogml", "bench", "optimizers",
                                "b.yaml"], cwd=killed, env=cli_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    trial = killed / "out/b/runs/quad/adam/trial1/seed0/summary.json"
    while not trial.is_file():  # the defaults are done, the trials under way
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=60)
    assert not (killed / "out/b/results.csv").exists()
    resumed = run_blogml(["bench", "optimizers", "b.yaml"], killed)
    assert resumed.returncode == 0, resumed.stderr
    assert _numbers(killed / "out/b/results.csv") == [
        [v.replace(str(tmp_path), str(killed)) for v in line] for line in _numbers(results)]


def test_the_protocol_bench_is_the_issues_grid():
    """configs/optbench/protocol.yaml: six optimizers x the six problems, budget 8, 3 seeds."""
    from tests.conftest import REPO

    bench, issues = check_bench(str(REPO / "configs/optbench/protocol.yaml"))
    assert issues == []
    values = bench.values
    assert {entry["data"]["problem"] for entry in values["problems"].values()} == {
        "noisy_quadratic", "rosenbrock", "classification", "embedding_bag", "vqvae_tiny",
        "nl2sql_tiny"}
    optimizers = values["optimizers"]
    assert len(optimizers) == 6 and all(o["budget"] == 8 and o["search"] for o in
                                        optimizers.values())
    assert values["seeds"] == [0, 1, 2] and values["tuning_seeds"] == [0]
    kinds = {(o["name"], o["layer_adaptation"], o["weight_decay"] > 0, o["lookahead"] is not None,
              o["ema"] is not None) for o in optimizers.values()}
    assert kinds == {("sgd", False, False, False, False), ("adam", False, False, False, False),
                     ("adam", False, True, False, False), ("adam", True, True, False, False),
                     ("lion", False, False, False, False), ("adam", False, False, True, True)}
    assert optimizers["sgd"]["momentum"] == 0.9
    assert all(entry["target"] for entry in values["problems"].values())
    assert len(bench.cells) == 6 * 6 * (3 + 8)  # defaults and trials; 72 tuned runs follow
