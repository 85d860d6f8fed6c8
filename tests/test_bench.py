"""`blogml bench optimizers`: the grid runs once, its outputs equal the runs' own records."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from blogml.cli.main import cli
from blogml.comparison.plots import seed_band
from blogml.data.synthetic import bag_splits
from blogml.runners.events import read_events
from tests.conftest import write_config

pytestmark = pytest.mark.backend_neutral  # CI runs these under JAX too

TINY = {
    "bench": "optimizers",
    "out_dir": "out/{config}",
    "seeds": [0, 1],
    "problems": {
        "quad": {"data": {"problem": "noisy_quadratic", "dim": 8, "num_train": 256,
                          "num_val": 64, "num_test": 64},
                 "train": {"epochs": 1, "steps_per_epoch": 24, "batch_size": 8, "log_every": 4,
                           "eval_every": 4},
                 "target_loss": 0.9},
        "bag": {"data": {"problem": "embedding_bag", "vocab_size": 3000, "num_train": 256,
                         "num_val": 64, "num_test": 64, "max_length": 8},
                "model": {"embedding_dim": 8},
                "train": {"epochs": 1, "batch_size": 32, "log_every": 2, "eval_every": 4}},
    },
    "optimizers": {
        "fast": {"name": "adam", "learning_rate": 0.05, "weight_decay": 0.1},
        "lazy": {"name": "adam", "learning_rate": 0.02, "weight_decay": 0.1,
                 "lazy": {"include": ["embeddings"]}},
    },
    "claims": {
        "rows": {"kind": "untouched_rows", "cell": "bag/lazy", "baseline": "bag/fast"},
        "same": {"kind": "same_result", "cell": "quad/lazy", "baseline": "quad/fast",
                 "metric": "val_suboptimality", "tolerance": 0.5},
        "steady": {"kind": "steadier", "cell": "quad/fast", "baseline": "quad/lazy",
                   "metric": "val_suboptimality", "last_fraction": 0.5,
                   "statement": "Fast Adam is steadier"},
    },
}
RUNS = [(p, o, s) for p in ("quad", "bag") for o in ("fast", "lazy") for s in (0, 1)]


def bench(*args: str):
    return CliRunner().invoke(cli, ["bench", "optimizers", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The tiny bench, run once: its folder (the bench directory is out/tiny)."""
    folder = tmp_path_factory.mktemp("bench")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("CI", "true")
        result = bench("tiny.yaml")
    assert result.exit_code == 0, result.output
    return folder


def run_dir(folder: Path, problem: str, optimizer: str, seed: int) -> Path:
    return folder / "out" / "tiny" / "runs" / problem / optimizer / f"seed{seed}"


def read_csv(folder: Path) -> list[dict[str, str]]:
    with open(folder / "out" / "tiny" / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def late_values(run: Path, fraction: float, total: int) -> list[float]:
    return [e["suboptimality"] for e in read_events(run / "metrics.jsonl")
            if e["event"] == "val" and e["step"] > (1 - fraction) * total]


@pytest.mark.slow
def test_results_csv_has_one_row_per_run_equal_to_its_own_record(tiny):
    rows = read_csv(tiny)
    assert [(r["problem"], r["optimizer"], int(r["seed"])) for r in rows] == RUNS
    for row in rows:
        run = run_dir(tiny, row["problem"], row["optimizer"], int(row["seed"]))
        summary = json.loads((run / "summary.json").read_text())
        events = read_events(run / "metrics.jsonl")
        train = [e for e in events if e["event"] == "train"]
        metric = row["metric"].removeprefix("val_")
        assert row["status"] == "finished" and int(row["steps"]) == summary["total_steps"]
        assert float(row["final_loss"]) == train[-1]["loss"]
        assert float(row["best_loss"]) == min(e["loss"] for e in train)
        assert float(row["final_metric"]) == summary["final"]["val"][metric]
        assert float(row["best_metric"]) == summary["best"]["value"]
        assert float(row["wall_seconds"]) == summary["wall_seconds"]
        assert float(row["steps_per_sec"]) == summary["steps_per_sec"]
        if row["problem"] == "quad":
            reached = [e["step"] for e in train if e["loss"] <= 0.9]
            assert row["steps_to_target"] == (str(reached[0]) if reached else "")
            assert row["metric"] == "val_suboptimality"
        else:
            assert row["target_loss"] == row["steps_to_target"] == ""
            assert row["metric"] == "val_accuracy"
        assert row["tricks"] == {"fast": "weight_decay=0.1", "lazy": "weight_decay=0.1; lazy"}[
            row["optimizer"]]


def table(report: str, problem: str) -> list[list[str]]:
    section = report.split(f"## {problem} ")[1].split("\n## ")[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


@pytest.mark.slow
def test_report_ranks_by_the_metric_with_mean_and_std_over_seeds(tiny):
    report = (tiny / "out" / "tiny" / "report.md").read_text()
    rows = read_csv(tiny)
    for problem, lower_is_better in (("quad", True), ("bag", False)):
        stats = {}
        for optimizer in ("fast", "lazy"):
            mine = [r for r in rows if r["problem"] == problem and r["optimizer"] == optimizer]
            final = [float(r["final_metric"]) for r in mine]
            loss = [float(r["final_loss"]) for r in mine]
            stats[optimizer] = (statistics.fmean(final),
                                f"{statistics.fmean(final):.4g} ± {statistics.stdev(final):.2g}",
                                f"{statistics.fmean(loss):.4g} ± {statistics.stdev(loss):.2g}")
        order = sorted(stats, key=lambda o: stats[o][0], reverse=not lower_is_better)
        got = table(report, problem)
        assert [line[:2] for line in got] == [["1", order[0]], ["2", order[1]]]
        for line in got:
            assert line[3] == stats[line[1]][1] and line[5] == stats[line[1]][2]
    for problem in ("quad", "bag"):
        for name in (f"{problem}_loss_vs_step.png", f"{problem}_loss_vs_time.png"):
            assert f"(plots/{name})" in report
            assert (tiny / "out" / "tiny" / "plots" / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_claims_are_decided_from_the_runs_with_their_numbers(tiny):
    report = (tiny / "out" / "tiny" / "report.md").read_text()
    claims = report.split("## Claims\n")[1]
    lines = {line.split("**")[1]: line for line in claims.splitlines() if line.startswith("- ")}
    assert list(lines) == ["rows", "same", "steady"]  # the report ends with them, in order

    never = np.mean([3000 - len(np.unique(bag_splits(
        {"train": 256, "val": 64, "test": 64}, 3000, 1.1, 4, 8, 4, 16, 0.05, seed)["train"][0]))
        for seed in (0, 1)])  # rows whose token ids the training data never contain
    assert "**supported**" in lines["rows"]
    assert f"of the {never:.0f} rows of 'embeddings' whose ids never occur" in lines["rows"]
    moved = re.search(r"bag/lazy changed 0 and bag/fast ([0-9.]+),", lines["rows"])
    assert 0 < float(moved.group(1)) <= never  # weight decay moves unseen rows without lazy

    final = {o: [read_events(run_dir(tiny, "quad", o, s) / "metrics.jsonl")[-1]["suboptimality"]
                 for s in (0, 1)] for o in ("lazy", "fast")}
    largest = max(abs(a - b) for a, b in zip(final["lazy"], final["fast"]))
    verdict = "**supported**" if largest <= 0.5 else "**not supported**"
    assert f": {verdict} — quad/lazy ends at val_suboptimality " \
           f"{statistics.fmean(final['lazy']):.6g} and quad/fast at " \
           f"{statistics.fmean(final['fast']):.6g}" in lines["same"]
    assert f"is {largest:.2g}," in lines["same"]

    spread = {o: np.mean([[np.mean(v), np.std(v)] for v in
                          (late_values(run_dir(tiny, "quad", o, s), 0.5, 24) for s in (0, 1))],
                         axis=0) for o in ("fast", "lazy")}
    verdict = "**supported**" if spread["fast"][1] < spread["lazy"][1] else "**not supported**"
    assert lines["steady"].startswith(f"- **steady**: Fast Adam is steadier: {verdict} — ")
    assert (f"quad/fast averages {spread['fast'][0]:.4g} with std {spread['fast'][1]:.3g}, "
            f"against {spread['lazy'][0]:.4g} with std {spread['lazy'][1]:.3g}") in lines["steady"]


@pytest.mark.slow
def test_rerunning_reuses_finished_runs_and_redoes_a_deleted_one_identically(tiny, tmp_path,
                                                                           monkeypatch):
    folder = tmp_path / "copy"
    shutil.copytree(tiny, folder)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("CI", "true")
    before_csv = (folder / "out" / "tiny" / "results.csv").read_text()
    summaries = {run: run_dir(folder, *run) / "summary.json" for run in RUNS}
    mtimes = {run: path.stat().st_mtime_ns for run, path in summaries.items()}

    result = bench("tiny.yaml")
    assert result.exit_code == 0, result.output
    assert {run: path.stat().st_mtime_ns for run, path in summaries.items()} == mtimes
    assert (folder / "out" / "tiny" / "results.csv").read_text() == before_csv

    redone = ("quad", "fast", 1)
    shutil.rmtree(run_dir(folder, *redone))
    result = bench("tiny.yaml")
    assert result.exit_code == 0, result.output
    for run, path in summaries.items():
        assert (path.stat().st_mtime_ns == mtimes[run]) == (run != redone)
    old = {(r["problem"], r["optimizer"], r["seed"]): r for r in csv.DictReader(
        before_csv.splitlines())}
    for row in read_csv(folder):
        previous = old[(row["problem"], row["optimizer"], row["seed"])]
        for column in ("final_loss", "best_loss", "final_metric", "best_metric",
                       "steps_to_target", "steps", "status"):
            assert row[column] == previous[column], (row["run_dir"], column)


def test_seed_band_is_the_median_and_range_over_seeds_at_common_steps():
    runs = [([1, 2, 3], [4.0, 2.0, 1.0], [0.1, 0.2, 0.3]),
            ([1, 2, 3], [6.0, 3.0, 0.5], [0.3, 0.4, 0.5]),
            ([1, 2], [5.0, 9.0], [0.2, 0.3])]  # a shorter run: only the common steps count
    x, median, low, high = seed_band(runs, against_time=False)
    assert x.tolist() == [1, 2] and median.tolist() == [5.0, 3.0]
    assert low.tolist() == [4.0, 2.0] and high.tolist() == [6.0, 9.0]
    x, *_ = seed_band(runs, against_time=True)
    np.testing.assert_allclose(x, [0.2, 0.3])


def test_an_interrupted_cell_stops_the_bench_with_exit_130(tmp_path, monkeypatch):
    from blogml.runners import study
    from blogml.runners.launch import Outcome

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "true")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    started = []

    def execute(plan):
        started.append(str(plan.run_dir))
        code = 130 if len(started) == 2 else 0
        return Outcome(plan.loaded.source, str(plan.run_dir),
                       "interrupted" if code else "finished", code)

    monkeypatch.setattr(study, "execute", execute)
    result = CliRunner().invoke(cli, ["bench", "optimizers", "tiny.yaml"])
    assert result.exit_code == 130
    assert started == [str(Path("out/tiny/runs/quad/fast/seed0")),
                       str(Path("out/tiny/runs/quad/fast/seed1"))]
    assert "bench interrupted at quad/fast/seed1" in result.output
    assert not (tmp_path / "out" / "tiny" / "report.md").exists()


def test_a_bad_bench_config_reports_every_mistake_by_file_and_key_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = {
        "bench": "optimizers",
        "out_dir": "out/{time}",
        "seeds": [0, -1],
        "problems": {
            "quad": {"data": {"problem": "noisy_quadratic", "dim": 0, "num_features": 3},
                     "trian": {"epochs": 1}},
            "mlp": {"train": {"monitor": "val_suboptimality"}, "target_loss": "low"},
        },
        "optimizers": {"sgd": {"name": "sgd", "learning_rat": 0.1},
                       "bad/name": {"name": "adam"}},
        "claims": {"c": {"kind": "stedier", "cell": "quad/sgd"},
                   "d": {"kind": "same_result", "cell": "quad", "baseline": "quad/sgd",
                         "last_fraction": 0.5}},
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad, sort_keys=False))
    train = write_config(tmp_path, "train")  # a training config is no bench file
    result = CliRunner().invoke(cli, ["bench", "optimizers", str(path), str(train)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = set(result.output.strip().splitlines()[1:])  # after "error:"
    assert lines == {
        f"{path}: out_dir: unknown placeholder {{time}}; expected one of: config",
        f"{path}: seeds[1]: must be an integer >= 0, got -1",
        f"{path}: problems.quad.trian: unknown key; did you mean 'train'?",
        f"{path}: problems.quad.data.num_features: is a data key of classification, not of "
        "noisy_quadratic; remove it or change data.problem",
        f"{path}: problems.quad.data.dim: must be an integer >= 1, got 0",
        f"{path}: problems.mlp.train.monitor: val_suboptimality is a metric of noisy_quadratic, "
        "rosenbrock, not of classification; expected one of: val_loss, val_accuracy",
        f"{path}: problems.mlp.target_loss: must be a number or null, got 'low'",
        f"{path}: optimizers.sgd.learning_rat: unknown key; did you mean 'learning_rate'?",
        f"{path}: optimizers.bad/name: key must be a name of letters, digits, '_', '.' or '-', "
        "got 'bad/name'",
        f"{path}: claims.c.kind: unknown value 'stedier'; did you mean 'steadier'?",
        f"{path}: claims.d.last_fraction: is a key of steadier claims, not of same_result; "
        "remove it or change kind",
        f"{path}: claims.d.cell: must be PROBLEM/OPTIMIZER, e.g. quadratic/sgd, got 'quad'",
        f"{train}: is a training config (task: optbench), not a bench file (bench: "
        "optimizers); train it with `blogml train`",
    }
    assert sorted(tmp_path.iterdir()) == sorted([path, train])  # nothing written


def test_names_that_refer_to_nothing_are_errors(tmp_path):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["seeds"] = [0, 0]
    config["problems"]["quad"]["optimizers"] = ["fast", "lazzy"]
    config["problems"]["bag"]["optimizers"] = ["fast"]
    config["claims"] = {
        "a": {"kind": "untouched_rows", "cell": "quad/fast", "baseline": "bag/lazy"},
        "b": {"kind": "steadier", "cell": "qaud/fast", "baseline": "quad/fast",
              "metric": "val_accuracy"},
    }
    path = tmp_path / "refs.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(cli, ["bench", "optimizers", str(path)])
    assert result.exit_code == 2
    assert set(result.output.strip().splitlines()[1:]) == {
        f"{path}: seeds[1]: repeats seed 0",
        f"{path}: problems.quad.optimizers[1]: unknown optimizer 'lazzy'; did you mean 'lazy'?",
        f"{path}: optimizers.lazy: runs on no problem (none lists it in its optimizers); add "
        "it to one or remove it",
        f"{path}: claims.a.cell: problem 'quad' is noisy_quadratic; untouched_rows needs an "
        "embedding_bag problem",
        f"{path}: claims.a.baseline: optimizer 'lazy' does not run on problem 'bag' (it runs "
        "fast)",
        f"{path}: claims.b.cell: unknown problem 'qaud'; did you mean 'quad'?",
        f"{path}: claims.b.metric: quad logs no 'val_accuracy'; expected one of: loss, "
        "val_loss, val_suboptimality, val_distance",
    }


def test_bench_help_and_checking_a_bench_never_import_keras(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    code = (
        "import sys\n"
        "from blogml.cli.main import cli\n"
        "from blogml.comparison.grid import load_bench\n"
        "for args in (['--help'], ['bench', '--help'], ['bench', 'optimizers', '--help']):\n"
        "    try:\n"
        "        cli(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('CELLS', len(load_bench(sys.argv[1]).cells))\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('keras', 'tensorflow', 'jax', 'torch', 'matplotlib', 'h5py'))\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                            text=True, check=True, env={**os.environ, "CI": "true"})
    assert "CELLS 8" in result.stdout and "HEAVY []" in result.stdout
