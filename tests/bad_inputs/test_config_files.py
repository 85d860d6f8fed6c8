"""Config files that cannot be used: every one is exit 2 naming the file and the line,
before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.bad_inputs.harness import assert_refused, invoke
from tests.conftest import tiny_config


def _written(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def _good(folder: Path) -> Path:
    return _written(folder, "good.yaml", yaml.safe_dump(tiny_config()))


@pytest.mark.parametrize("command", [["train"], ["config", "check"]])
def test_a_repeated_section_is_an_error_naming_both_lines(in_tmp, unchanged, command):
    config = _written(in_tmp, "twice.yaml", "task: optbench\ntrain:\n  epochs: 2\nseed: 3\n"
                                            "train:\n  epochs: 5\n")
    unchanged.append(config)
    outcome = invoke(*command, str(config))
    assert_refused(outcome, 2, "twice.yaml", "line 5", "duplicate key 'train'",
                   "first given on line 2")
    assert not (in_tmp / "runs").exists()


def test_a_repeated_key_in_a_flow_mapping_is_an_error(in_tmp):
    config = _written(in_tmp, "flow.yaml", "task: optbench\ntrain: {epochs: 2, epochs: 3}\n")
    assert_refused(invoke("config", "check", str(config)), 2, "flow.yaml", "line 2",
                   "duplicate key 'epochs'")


def test_merge_keys_are_not_duplicates(in_tmp):
    """`<<: *base` then an override of one of its keys is what anchors are for."""
    base = tiny_config()
    text = yaml.safe_dump({k: v for k, v in base.items() if k != "train"})
    text += ("train: &train\n  epochs: 2\n  batch_size: 32\n  log_every: 1\n"
             "  eval_every: 8\n")
    text = text.replace("train: &train", "x-train: &train") + "train:\n  <<: *train\n  epochs: 1\n"
    config = _written(in_tmp, "merged.yaml", text)
    outcome = invoke("config", "check", str(config))
    # the anchor's holder is an unknown key, reported as such; the merge itself is accepted
    assert "duplicate" not in outcome.output and "x-train: unknown key" in outcome.output


def test_a_file_that_is_not_utf8_names_the_byte_and_line(in_tmp, unchanged):
    config = _written(in_tmp, "latin1.yaml", "task: optbench\n# caf\xe9\n".encode("latin-1"))
    unchanged.append(config)
    assert_refused(invoke("train", str(config)), 2, "latin1.yaml", "line 2", "0xe9",
                   "not UTF-8", "save the file as UTF-8")
    assert not (in_tmp / "runs").exists()


def test_every_bad_file_of_a_study_is_listed_at_once_and_nothing_runs(in_tmp):
    good = _good(in_tmp)
    twice = _written(in_tmp, "twice.yaml", "task: optbench\ntask: vqvae\n")
    latin = _written(in_tmp, "latin1.yaml", b"task: optbench\nseed: \xff\n")
    outcome = invoke("train", str(good), str(twice), str(latin))
    assert_refused(outcome, 2, "twice.yaml: line 2", "latin1.yaml: line 2", "0xff")
    assert "good.yaml" not in outcome.output  # nothing wrong with it
    assert not (in_tmp / "runs").exists()


@pytest.mark.parametrize("make, named", [
    (lambda folder: folder / "missing.yaml", "file not found"),
    (lambda folder: (folder / "adir.yaml").mkdir() or folder / "adir.yaml", "is a folder"),
    (lambda folder: _written(folder, "list.yaml", "- 1\n- 2\n"), "must be a YAML mapping"),
    (lambda folder: _written(folder, "tabs.yaml", "task: optbench\n\tseed: 1\n"), "line 2"),
])
def test_a_file_that_is_no_config_is_named_with_the_reason(in_tmp, make, named):
    path = make(in_tmp)
    assert_refused(invoke("train", str(path)), 2, path.name, named)
    assert not (in_tmp / "runs").exists()
