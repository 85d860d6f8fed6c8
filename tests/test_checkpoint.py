"""Checkpoints: exact round trip, atomic replacement, clear errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from blogml.errors import CheckpointError
from blogml.runners import checkpoint as ckpt

pytestmark = pytest.mark.backend_neutral


def variables(seed: float) -> list[keras.Variable]:
    return [keras.Variable(np.full((3, 2), seed, "float32"), name="kernel"),
            keras.Variable(np.arange(4, dtype="int64") + int(seed), name="count")]


def values(vs) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(v) for v in vs]


def test_round_trip_restores_every_value_and_the_meta(tmp_path):
    saved = variables(1.5)
    ckpt.save_checkpoint(tmp_path / "last", {"model": saved}, {"loop": {"step": 7}})
    loaded = ckpt.load_checkpoint(tmp_path / "last")
    assert loaded.meta == {"loop": {"step": 7}}
    target = variables(0.0)
    ckpt.assign_group(loaded, "model", target)
    for a, b in zip(values(saved), values(target)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_a_write_that_fails_halfway_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    folder = tmp_path / "last"
    ckpt.save_checkpoint(folder, {"model": variables(1.0)}, {"loop": {"step": 1}})
    before = (folder / "checkpoint.h5").read_bytes()

    real_write = ckpt.write_groups

    def write_then_die(handle, groups):
        real_write(handle, {"model": groups["model"][:1]})  # half the variables are on disk
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "write_groups", write_then_die)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(folder, {"model": variables(2.0)}, {"loop": {"step": 2}})
    assert (folder / "checkpoint.h5").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.h5"]  # no temp file left
    loaded = ckpt.load_checkpoint(folder)
    assert loaded.meta["loop"]["step"] == 1
    target = variables(0.0)
    ckpt.assign_group(loaded, "model", target)
    np.testing.assert_array_equal(values(target)[0], np.full((3, 2), 1.0))


def test_corrupt_and_missing_checkpoints_raise_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        ckpt.load_checkpoint(tmp_path / "nothing")
    folder = tmp_path / "last"
    ckpt.save_checkpoint(folder, {"model": variables(1.0)}, {"loop": {"step": 1}})
    data = (folder / "checkpoint.h5").read_bytes()
    (folder / "checkpoint.h5").write_bytes(data[: len(data) // 2])  # truncated by a crash
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        ckpt.load_checkpoint(folder)


def test_a_checkpoint_that_does_not_fit_names_the_variable(tmp_path):
    ckpt.save_checkpoint(tmp_path, {"model": variables(1.0)}, {})
    loaded = ckpt.load_checkpoint(tmp_path)
    wrong = [keras.Variable(np.zeros((3, 5), "float32"), name="kernel"), variables(0)[1]]
    with pytest.raises(CheckpointError, match=r"'kernel' \(3, 2\) does not fit 'kernel' \(3, 5\)"):
        ckpt.assign_group(loaded, "model", wrong)
    # One variable fewer (a layer dropped by a later blogml, say): the message names it.
    with pytest.raises(CheckpointError, match=r"holds 2 model variables, the model has 1 "
                                              r"\(only in the checkpoint: count\)"):
        ckpt.assign_group(loaded, "model", wrong[:1])
    before = values(wrong)
    np.testing.assert_array_equal(before[0], np.zeros((3, 5)))  # nothing half-assigned
