"""Composed configs (`base:`, `${env:...}`), sweeps (`--sweep`, `sweep:`), and the origin of
every value: hand-worked examples."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from blogml.cli.main import cli
from blogml.config.compose import compose
from blogml.config.schema import Issues
from blogml.config.sweep import label, parse_sweep_options, points
from blogml.errors import ConfigError
from blogml.runners.rundir import format_run_dir
from blogml.tasks.configs import load_configs
from tests.conftest import tiny_config

COMMON = """\
task: optbench
seed: 3
data: {num_train: 512, num_val: 128, num_test: 128, num_features: 8, num_classes: 4}
model:
  hidden_units: [32, 32]
  dropout: 0.1
train: {epochs: 2, batch_size: 32}
"""


def _files(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def test_bases_merge_in_order_the_file_last_mappings_by_key_lists_whole(tmp_path):
    _files(tmp_path, {
        "bases/common.yaml": COMMON,
        "bases/wide.yaml": "model: {hidden_units: [64]}\ntrain: {batch_size: 64}\n",
        "exp/run.yaml": "base: [../bases/common.yaml, ../bases/wide.yaml]\n"
                        "train:\n  epochs: 5\n",
    })
    composed, issues = compose(str(tmp_path / "exp/run.yaml"))
    assert issues == []
    assert composed.raw["model"] == {"hidden_units": [64], "dropout": 0.1}  # list replaced
    assert composed.raw["train"] == {"epochs": 5, "batch_size": 64}
    assert composed.raw["seed"] == 3 and "base" not in composed.raw
    common, wide, run = (str(tmp_path / p) for p in
                         ("bases/common.yaml", "bases/wide.yaml", "exp/run.yaml"))
    assert composed.origins == {
        "task": f"{common}:1", "seed": f"{common}:2",
        **{f"data.{k}": f"{common}:3" for k in
           ("num_train", "num_val", "num_test", "num_features", "num_classes")},
        "model.hidden_units": f"{wide}:1", "model.dropout": f"{common}:6",
        "train.epochs": f"{run}:3", "train.batch_size": f"{wide}:2",
    }


def test_a_base_chain_that_loops_is_an_error_naming_it(tmp_path):
    _files(tmp_path, {"a.yaml": "base: b.yaml\ntask: optbench\n", "b.yaml": "base: a.yaml\n"})
    composed, issues = compose(str(tmp_path / "a.yaml"))
    assert composed is None
    assert len(issues) == 1 and "a.yaml is a base of itself" in str(issues[0])
    assert str(issues[0]).startswith(f"{tmp_path / 'b.yaml'}:1: base: ")


def test_a_missing_base_names_the_file(tmp_path):
    _files(tmp_path, {"a.yaml": "task: optbench\nbase: nothere.yaml\n"})
    _, issues = compose(str(tmp_path / "a.yaml"))
    assert [str(i) for i in issues] == [f"{tmp_path / 'nothere.yaml'}: file not found"]


def test_env_values_are_parsed_like_set_values_and_a_missing_one_names_its_line(
        tmp_path, monkeypatch):
    monkeypatch.setenv("BLOGML_TEST_LR", "3.0e-4")
    monkeypatch.delenv("BLOGML_TEST_UNSET", raising=False)
    _files(tmp_path, {"a.yaml": "optimizer:\n  learning_rate: ${env:BLOGML_TEST_LR}\n"
                                "run_dir: runs/${env:BLOGML_TEST_UNSET,default}/x\n"
                                "seed: ${env:BLOGML_TEST_UNSET,7}\n"})
    composed, issues = compose(str(tmp_path / "a.yaml"))
    assert issues == []
    assert composed.raw == {"optimizer": {"learning_rate": 3.0e-4},
                            "run_dir": "runs/default/x", "seed": 7}
    _files(tmp_path, {"b.yaml": "task: optbench\ndata:\n  num_train: ${env:BLOGML_TEST_UNSET}\n"})
    _, issues = compose(str(tmp_path / "b.yaml"))
    assert [str(i) for i in issues] == [
        f"{tmp_path / 'b.yaml'}:3: data.num_train: ${{env:BLOGML_TEST_UNSET}} is not set; "
        "export BLOGML_TEST_UNSET=... or give a default: ${env:BLOGML_TEST_UNSET,VALUE}"]


def test_a_schema_error_names_the_line_of_the_base_file_it_came_from(tmp_path):
    _files(tmp_path, {"common.yaml": COMMON.replace("dropout: 0.1", "dropout: 1.5"),
                      "run.yaml": "base: common.yaml\nseed: -1\n"})
    with pytest.raises(ConfigError) as error:
        load_configs([str(tmp_path / "run.yaml")])
    run, common = tmp_path / "run.yaml", tmp_path / "common.yaml"
    assert str(error.value).splitlines() == [
        f"{run}: seed: must be an integer >= 0, got -1 (line 2)",
        f"{run}: model.dropout: must be a number >= 0 and <= 0.9, got 1.5 ({common}, line 6)",
    ]


@pytest.mark.parametrize("text, values", [
    ("1e-3,3e-4", [1e-3, 3e-4]),
    ("range(0,3)", [0, 1, 2]),
    ("range(2, 10, 4)", [2, 6]),
    ("logspace(-4,-2,3)", [1e-4, 1e-3, 1e-2]),
    ("[8,8],[16]", [[8, 8], [16]]),
    ("adam,sgd", ["adam", "sgd"]),
    ("true", [True]),
])
def test_sweep_values(text, values):
    issues = Issues()
    parsed = parse_sweep_options([f"k={text}"], issues)["k"]
    assert not issues
    assert len(parsed) == len(values)
    for got, want in zip(parsed, values):
        if isinstance(want, float):
            assert math.isclose(got, want, rel_tol=1e-12)
        else:
            assert got == want and type(got) is type(want)


@pytest.mark.parametrize("text, message", [
    ("range(0)", "expected range(start, stop[, step]) with integers"),
    ("range(0,1.5)", "expected range(start, stop[, step]) with integers"),
    ("range(0,3,0)", "a step that is not 0"),
    ("range(3,0)", "range(3,0) is empty"),
    ("logspace(-4,-2)", "expected logspace(a, b, n)"),
    ("logspace(-4,-2,0)", "n an integer >= 1"),
    ("", "sweeps no value"),
])
def test_bad_sweep_values_say_what_is_expected(text, message):
    issues = Issues()
    parse_sweep_options([f"optimizer.learning_rate={text}"], issues)
    assert len(issues.items) == 1 and issues.items[0][0] == "optimizer.learning_rate"
    assert message in issues.items[0][1]


def test_points_are_the_product_first_key_slowest_and_labels_are_unique_suffixes():
    sweeps = {"optimizer.learning_rate": [1e-3, 3e-4], "seed": [0, 1]}
    assert points(sweeps) == [
        (("optimizer.learning_rate", 1e-3), ("seed", 0)),
        (("optimizer.learning_rate", 1e-3), ("seed", 1)),
        (("optimizer.learning_rate", 3e-4), ("seed", 0)),
        (("optimizer.learning_rate", 3e-4), ("seed", 1)),
    ]
    assert points({}) == [()]
    assert label((("optimizer.learning_rate", 3e-4), ("seed", 1))) == \
        "learning_rate=0.0003,seed=1"
    assert label((("model.dropout", 0.1), ("data.dropout", 0.2), ("model.hidden_units", [8, 8])))\
        == "model.dropout=0.1,data.dropout=0.2,hidden_units=[8,8]"
    assert label((("data.path", "a/b"),)) == "path=a-b"  # never a folder of its own


def test_a_sweep_section_and_the_command_line_sweep_every_point_each_in_its_run_dir(tmp_path):
    raw = tiny_config(run_dir="runs/{config}", sweep={"seed": [0, 1],
                                                     "optimizer.learning_rate": "1e-2,1e-3"})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    loaded = load_configs([str(path)], sweeps=["optimizer.learning_rate=3e-3"])
    assert [c.point for c in loaded] == [(("seed", 0), ("optimizer.learning_rate", 3e-3)),
                                         (("seed", 1), ("optimizer.learning_rate", 3e-3))]
    assert [c.values["seed"] for c in loaded] == [0, 1]
    assert all(c.values["optimizer"]["learning_rate"] == 3e-3 for c in loaded)
    assert [format_run_dir(c, "t") for c in loaded] == [
        "runs/s/seed=0,learning_rate=0.003", "runs/s/seed=1,learning_rate=0.003"]
    line = path.read_text().splitlines().index("  seed:") + 1
    assert loaded[0].origins["seed"] == f"{path}:{line}"
    assert loaded[0].origins["optimizer.learning_rate"] == "--sweep"
    assert "sweep" not in loaded[0].values


def test_every_bad_point_is_reported_before_anything_runs_once_per_message(in_tmp):
    path = in_tmp / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_config(), sort_keys=False))
    result = CliRunner().invoke(cli, ["train", str(path), "--sweep", "seed=0,1",
                                      "--sweep", "optimizer.learning_rate=1e-2,-1,0"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()[1:]
    assert lines == [
        f"{path}: optimizer.learning_rate: must be a number > 0, got -1.0 (from --sweep)",
        f"{path}: optimizer.learning_rate: must be a number > 0, got 0.0 (from --sweep)"]
    assert not (in_tmp / "runs").exists()
    both = CliRunner().invoke(cli, ["train", str(path), "--sweep", "seed=0,1", "--set", "seed=2"])
    assert both.exit_code == 2 and "seed: is both swept and given by --set; keep one" in both.output


def test_config_show_origin_says_where_every_value_came_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _files(tmp_path, {"common.yaml": COMMON, "run.yaml": "base: common.yaml\n"
                                                         "optimizer: {learning_rate: 0.02}\n"})
    result = CliRunner().invoke(cli, ["config", "show", "run.yaml", "--origin", "--set",
                                      "train.epochs=4", "--sweep", "seed=1,2"])
    assert result.exit_code == 0, result.output
    first, second = result.output.split("---\n")
    assert first.startswith("# sweep: seed=1\n")
    lines = first.splitlines()
    assert "task: optbench  # common.yaml:1" in lines
    assert "seed: 1  # --sweep" in lines
    assert "  learning_rate: 0.02  # run.yaml:2" in lines
    assert "  epochs: 4  # --set" in lines
    assert "  hidden_units: [32, 32]  # common.yaml:5" in lines
    assert "  beta_1: 0.9  # default" in lines
    assert "seed: 2  # --sweep" in second.splitlines()
    plain = CliRunner().invoke(cli, ["config", "show", "run.yaml"])
    assert yaml.safe_load(plain.output)["optimizer"]["learning_rate"] == 0.02


def test_a_swept_study_resumes_each_point_in_its_own_run_dir(in_tmp):
    path = in_tmp / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_config(model={"hidden_units": [8]}), sort_keys=False))
    command = ["train", str(path), "--sweep", "model.hidden_units=[8],[4,4]", "--resume"]
    first = CliRunner().invoke(cli, command)
    assert first.exit_code == 0, first.output
    assert sorted(p.name for p in (in_tmp / "runs/s").iterdir()) == [
        "hidden_units=[4,4]", "hidden_units=[8]"]
    again = CliRunner().invoke(cli, command)
    assert again.exit_code == 0
    assert again.output.count("skipped (already finished)") == 2
