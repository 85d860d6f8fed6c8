"""Config checking: every mistake reported at once, by file and key path, exit 2, no writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from blogml.cli.main import cli
from blogml.config import parse_overrides
from blogml.errors import ConfigError
from blogml.tasks.configs import check_config
from tests.conftest import tiny_config, write_config


def issues_of(raw: dict, overrides: list[str] = ()) -> list[str]:
    _, issues = check_config(raw, "x.yaml", parse_overrides(overrides))
    return [str(issue) for issue in issues]


def test_three_mistakes_all_reported_with_file_and_key_path_exit_2_nothing_written(in_tmp):
    path = write_config(in_tmp, "bad",
                        train={"epochs": "ten", "batch_size": 32, "log_every": 1},
                        optimizer={"name": "adam", "learning_rat": 0.1},
                        model={"hidden_units": [16], "dropout": 1.5})
    result = CliRunner().invoke(cli, ["train", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    text = path.read_text().splitlines()
    line = {key: text.index(f"  {key}: {value}") + 1 for key, value in
            [("epochs", "ten"), ("learning_rat", "0.1"), ("dropout", "1.5")]}
    assert (f"{path}: train.epochs: must be an integer >= 1, got 'ten' "
            f"(line {line['epochs']})") in lines
    assert (f"{path}: optimizer.learning_rat: unknown key; did you mean 'learning_rate'? "
            f"(line {line['learning_rat']})") in lines
    assert (f"{path}: model.dropout: must be a number >= 0 and <= 0.9, got 1.5 "
            f"(line {line['dropout']})") in lines
    assert "Traceback" not in result.output
    assert list(in_tmp.iterdir()) == [path]  # no run directory, nothing else written


def test_errors_of_all_configs_are_reported_before_anything_runs(in_tmp):
    good = write_config(in_tmp, "good")
    bad = write_config(in_tmp, "bad", seed=-1)
    worse = in_tmp / "worse.yaml"
    worse.write_text("task: optbench\ntrain: {epochs: 2\n")
    result = CliRunner().invoke(cli, ["train", str(good), str(bad), str(worse)])
    assert result.exit_code == 2
    assert f"{bad}: seed: must be an integer >= 0, got -1" in result.output
    assert f"{worse}: line 3, column 1: invalid YAML" in result.output
    assert not (in_tmp / "runs").exists()


def test_defaults_are_filled_and_overrides_parse_as_yaml():
    values, issues = check_config({"task": "optbench"}, "x.yaml",
                                  parse_overrides(["optimizer.learning_rate=3e-4",
                                                   "train.epochs=2", "model.hidden_units=[8, 4]"]))
    assert issues == []
    assert values["optimizer"]["learning_rate"] == pytest.approx(3e-4)  # "3e-4" is a YAML str
    assert values["train"]["epochs"] == 2
    assert values["model"]["hidden_units"] == [8, 4]
    assert values["train"]["batch_size"] == 32 and values["seed"] == 0
    assert values["optimizer"]["beta_2"] == 0.999  # the base optimizer's own defaults


@pytest.mark.parametrize("raw, expected", [
    ({"task": "optbnch"}, "x.yaml: task: unknown task 'optbnch'; did you mean 'optbench'?"),
    ({}, "x.yaml: task: missing required key; one of: optbench, vqvae, vqvae_prior, nl2sql"),
    ({"task": "optbench", "train": {"batch_size": True}},
     "x.yaml: train.batch_size: must be an integer >= 1, got true"),
    ({"task": "optbench", "optimizer": {"name": "sgd", "beta_1": 0.9}},
     "x.yaml: optimizer.beta_1: is an argument of adam, adamw, adamax, nadam, lamb, lion, not "
     "of sgd; remove it or change optimizer.name"),
    ({"task": "optbench", "optimizer": {"lookahead": {"k": 0}, "ema": {"momentum": 1}}},
     "x.yaml: optimizer.lookahead.k: must be an integer >= 1, got 0"),
    ({"task": "optbench", "optimizer": {"ema": {"momentum": 1}}},
     "x.yaml: optimizer.ema.momentum: must be below 1 (at 1 the average never moves), got 1"),
    ({"task": "optbench", "optimizer": {"name": "lamb", "layer_adaptation": True}},
     "x.yaml: optimizer.layer_adaptation: lamb already applies this trust ratio; use name: adam "
     "with layer_adaptation: true, or drop layer_adaptation"),
    ({"task": "optbench", "optimizer": {"paramwise_lr": {"dense(": 2.0}}},
     "x.yaml: optimizer.paramwise_lr.dense(: key is not a valid regular expression (missing ), "
     "unterminated subpattern at position 5)"),
    ({"task": "optbench", "optimizer": {"schedule": {"piecewise_linear": {"a": 1.0}}}},
     "x.yaml: optimizer.schedule.piecewise_linear.a: key must be an integer >= 0, got 'a'"),
    ({"task": "optbench", "optimizer": {"schedule": {}}},
     "x.yaml: optimizer.schedule.piecewise_linear: missing required key (a mapping of at least "
     "1 entries from an integer >= 0 to a number >= 0)"),
    ({"task": "optbench", "optimizer": {"name": "adma"}},
     "x.yaml: optimizer.name: unknown optimizer 'adma'; did you mean 'adam'?"),
    ({"task": "optbench", "optimizer": {"learning_rate": 0}},
     "x.yaml: optimizer.learning_rate: must be a number > 0, got 0.0"),
    ({"task": "optbench", "optimizer": {"clipnorm": 1.0, "global_clipnorm": 1.0}},
     "x.yaml: optimizer.global_clipnorm: cannot be used together with clipnorm; keep one "
     "kind of gradient clipping"),
    ({"task": "optbench", "optimizer": {"clipvalue": 1.0, "global_clipnorm": 1.0}},
     "x.yaml: optimizer.clipvalue: cannot be used together with global_clipnorm; keep one "
     "kind of gradient clipping"),
    ({"task": "optbench", "train": {"monitor": "val_acc"}},
     "x.yaml: train.monitor: unknown value 'val_acc'; did you mean 'val_accuracy'?"),
    ({"task": "optbench", "train": {"jit_compile": "yes"}},
     "x.yaml: train.jit_compile: must be one of auto, true, false, got 'yes'"),
    ({"task": "optbench", "run_dir": "runs/{tsk}"},
     "x.yaml: run_dir: unknown placeholder {tsk}; did you mean 'task'?"),
    ({"task": "optbench", "model": {"hidden_units": [4, 0]}},
     "x.yaml: model.hidden_units[1]: must be an integer >= 1, got 0"),
    ({"task": "optbench", "data": [1]}, "x.yaml: data: must be a mapping, got a list"),
    ({"task": "optbench", "backend": "tf"},
     "x.yaml: backend: unknown value 'tf'; expected one of: tensorflow, jax, torch"),
])
def test_each_kind_of_mistake_has_a_precise_message(raw, expected):
    assert issues_of(raw) == [expected]


def test_set_errors_name_the_override():
    with pytest.raises(ConfigError) as error:
        parse_overrides(["train.epochs"])
    assert str(error.value) == "--set: train.epochs: expected key.path=value, e.g. train.epochs=2"
    assert issues_of({"task": "optbench", "seed": 0}, ["seed.value=1"]) == [
        "x.yaml: seed.value: cannot set it from --set: seed is 0, not a mapping"]


def test_unknown_keys_are_errors_at_every_level():
    raw = tiny_config(extra=1, data={"num_clases": 3})
    assert issues_of(raw) == [
        "x.yaml: extra: unknown key; expected one of: task, seed, run_dir, backend, data, "
        "model, optimizer, train, distribution, tracking",
        "x.yaml: data.num_clases: unknown key; did you mean 'num_classes'?",
    ]


def test_config_show_prints_the_resolved_config(in_tmp):
    path = write_config(in_tmp)
    result = CliRunner().invoke(cli, ["config", "show", str(path), "--set", "seed=7"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["seed"] == 7
    assert shown["train"]["checkpoint_every"] is None and shown["train"]["epochs"] == 2
    assert shown["optimizer"]["epsilon"] == pytest.approx(1e-7)


def test_help_and_config_check_never_import_keras(tmp_path: Path):
    path = write_config(tmp_path)
    code = (
        "import sys\n"
        "from blogml.cli.main import cli\n"
        "for args in (['--help'], ['config', 'check', sys.argv[1]],"
        " ['config', 'show', sys.argv[1]], ['train', '--help'], ['runs', '--help']):\n"
        "    try:\n"
        "        cli(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('keras', 'tensorflow', 'jax', 'torch', 'matplotlib', 'h5py'))\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                            text=True, check=True)
    assert "HEAVY []" in result.stdout
    assert f"{path}: ok (optbench)" in result.stdout
