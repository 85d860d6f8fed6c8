"""`blogml runs` (README: Commands) shows the config keys that tell the listed runs apart,
on run dirs written by hand: no training, milliseconds each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from blogml.cli.main import cli

pytestmark = pytest.mark.backend_neutral


def make_run(root: Path, name: str, config: dict[str, Any] | str, **summary: Any) -> None:
    """A run dir as `blogml train` leaves it: the resolved config.yaml (YAML text as given,
    for a broken one) and a summary.json of `BaseRunner._write_summary`'s shape."""
    folder = root / name
    folder.mkdir(parents=True)
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    (folder / "config.yaml").write_text(text)
    (folder / "summary.json").write_text(json.dumps({
        "status": "finished", "message": "", "task": "optbench", "step": 10, "total_steps": 10,
        "best": {"metric": "val_loss", "value": 0.5, "step": 10},
        "final": {"val": {"loss": 0.5}, "train": {}}, "wall_seconds": 3, **summary}))


def config(**keys: Any) -> dict[str, Any]:
    """A resolved optbench config, in schema key order; `keys` replace its top-level keys."""
    return {"task": "optbench", "seed": 0, "run_dir": "runs/{config}", "backend": "tensorflow",
            "model": {"hidden_units": [16, 16], "dropout": 0.0},
            "optimizer": {"name": "adam", "learning_rate": 0.001},
            "train": {"epochs": 2, "monitor_mode": "min"}, **keys}


def table(root: Path, *args: str) -> list[str]:
    result = CliRunner().invoke(cli, ["runs", str(root), *args])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


@pytest.fixture
def study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three runs that differ in learning rate, seed and width (c's config has no seed, as
    one from before a key existed), and one whose config.yaml is no mapping. The run_dir
    templates differ too, and must not show."""
    monkeypatch.chdir(tmp_path)  # the run_dir column reads study/a, ...
    root = Path("study")
    make_run(root, "a", config())
    make_run(root, "b", config(seed=1, run_dir="runs/b-{time}",
                               optimizer={"name": "adam", "learning_rate": 1.0e-5}),
             best={"metric": "val_loss", "value": 0.25}, final={"val": {"loss": 0.25}})
    no_seed = config(model={"hidden_units": [32], "dropout": 0.0})
    del no_seed["seed"]
    make_run(root, "c", no_seed, status="failed", step=3, best={"metric": "val_loss",
                                                                  "value": None})
    make_run(root, "d", "- not\n- a mapping\n")
    return root


def test_the_keys_that_differ_are_columns_before_the_metrics(study):
    assert table(study, "--metric", "val_loss") == [
        "run_dir  task      status    steps  best           time   seed  hidden_units  "
        "learning_rate  val_loss",
        "-------  --------  --------  -----  -------------  -----  ----  ------------  "
        "-------------  --------",
        "study/a  optbench  finished  10/10  val_loss=0.5   0m03s  0     [16,16]       "
        "0.001          0.5",
        "study/b  optbench  finished  10/10  val_loss=0.25  0m03s  1     [16,16]       "
        "1e-05          0.25",
        "study/c  optbench  failed    3/10   -              0m03s  -     [32]          "
        "0.001          0.5",
        "study/d  ?         finished  10/10  val_loss=0.5   0m03s  ?     ?             "
        "?              0.5"]
    warnings = CliRunner().invoke(cli, ["runs", str(study)]).stderr.splitlines()
    assert warnings == ["warning: study/d/config.yaml: must be a YAML mapping of keys, got a "
                        "list; its task and config are shown as ?"]


def test_no_differ_shows_only_the_fixed_columns(study):
    lines = table(study, "--no-differ")
    assert lines[0].split() == ["run_dir", "task", "status", "steps", "best", "time"]
    assert lines[2].split()[1:] == ["optbench", "finished", "10/10", "val_loss=0.5", "0m03s"]


def test_sort_by_a_config_column_lowest_first_and_the_unknown_last(study):
    names = [Path(line.split()[0]).name for line in table(study, "--sort", "learning_rate")[2:]]
    assert names == ["b", "a", "c", "d"]  # 1e-05 < 0.001 (as numbers), then no value
    for column in ("seed", "hidden_units"):  # a list by its text: [16,16] < [32]
        names = [Path(line.split()[0]).name for line in table(study, "--sort", column)[2:]]
        assert names == ["a", "b", "c", "d"]
    result = CliRunner().invoke(cli, ["runs", str(study), "--no-differ", "--sort", "seed"])
    assert result.exit_code == 2 and "differs between the listed runs (none)" in result.output


def test_filtering_first_then_comparing(study):
    """Between the finished runs a and b only seed and learning_rate differ."""
    lines = table(study, "--status", "failed")
    assert lines[0].split() == ["run_dir", "task", "status", "steps", "best", "time"]
    lines = table(study, "--status", "finished")
    assert lines[0].split()[6:] == ["seed", "learning_rate"]


def test_a_header_is_the_shortest_suffix_no_other_column_ends_with(tmp_path):
    make_run(tmp_path, "a", config(train={"epochs": 2, "monitor_mode": "min",
                                          "name": "x", "steps": 1}))
    make_run(tmp_path, "b", config(optimizer={"name": "sgd", "learning_rate": 0.001},
                                   train={"epochs": 3, "monitor_mode": "min",
                                          "name": "y", "steps": 2}))
    # name twice: named by its section; steps: a column already (so is `best`, `time`...).
    assert table(tmp_path)[0].split()[6:] == ["optimizer.name", "epochs", "train.name",
                                              "train.steps"]
    names = [Path(line.split()[0]).name for line in
             table(tmp_path, "--sort", "optimizer.name", "--reverse")[2:]]
    assert names == ["b", "a"]


def test_values_are_compact_and_cut_at_24_characters(tmp_path):
    """b's config is from before `data.noise` existed: a key one run lacks differs too."""
    long = "data/" + "x" * 30
    make_run(tmp_path, "a", config(backend="jax", data={"path": long, "shuffle": True,
                                                        "weights": None, "grid": [[1, 2]],
                                                        "noise": 0.05}))
    make_run(tmp_path, "b", config(data={"path": "data/y", "shuffle": False,
                                         "weights": 0.1 * 3, "grid": [[1, 3]]}))
    lines = table(tmp_path)
    assert lines[0].split()[6:] == ["backend", "path", "shuffle", "weights", "grid", "noise"]
    assert lines[2].split()[6:] == ["jax", long[:23] + "…", "true", "null", "[[1,2]]", "0.05"]
    assert lines[3].split()[6:] == ["tensorflow", "data/y", "false", "0.3", "[[1,3]]", "-"]
