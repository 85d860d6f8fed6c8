"""Checkpoints: model and optimizer variables plus the loop state, in one HDF5 file.

`checkpoints/<name>/checkpoint.h5` holds

    /model/00000 ...       every model variable (weights, BN statistics, seed-generator state)
    /optimizer/00000 ...   every optimizer variable (iteration count, moments, ...)
    attrs["meta"]          JSON: step, data position, best metric so far, timings, log window

Each dataset keeps its variable's `path` as an attribute and is checked against it on load,
so a checkpoint that does not fit the model is reported by name instead of silently
mis-assigned. One file per checkpoint makes the write atomic with a single `os.replace`:
the file is written under a temporary name, flushed to disk, then renamed over the old
one, so a crash at any moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from blogml.errors import CheckpointError, naming

FILENAME = "checkpoint.h5"
# What an HDF5 file needs beyond its arrays (object headers, attributes, the superblock),
# with room to spare: measured 0.5 KiB per dataset (a VQ-VAE's 95 variables).
SPACE_PER_DATASET = 2 * 1024
SPACE_SLACK = 64 * 1024


@dataclass
class Checkpoint:
    """A checkpoint read from disk: variable values by group, and the loop state."""

    path: Path
    groups: dict[str, list[tuple[str, np.ndarray]]]
    meta: dict[str, Any]


def checkpoint_file(folder: Path) -> Path:
    return Path(folder) / FILENAME


def _values(variables: Sequence[Any]) -> list[tuple[str, np.ndarray]]:
    import keras  # here: reading a checkpoint (the data checks do) needs no Keras

    return [(v.path, keras.ops.convert_to_numpy(v)) for v in variables]


def write_groups(handle: h5py.File, groups: dict[str, list[tuple[str, np.ndarray]]]) -> None:
    for group_name, values in groups.items():
        group = handle.create_group(group_name)
        for index, (path, value) in enumerate(values):
            dataset = group.create_dataset(f"{index:05d}", data=value)
            dataset.attrs["path"] = path


def save_checkpoint(folder: Path, variables: dict[str, Sequence[Any]],
                    meta: dict[str, Any]) -> Path:
    """Atomically write `folder/checkpoint.h5` from named lists of Keras variables."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = checkpoint_file(folder)
    tmp = folder / f".{FILENAME}.tmp-{os.getpid()}"
    groups = {name: _values(group) for name, group in variables.items()}
    _ensure_space(folder, groups, target)
    try:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["meta"] = json.dumps(meta)
            write_groups(handle, groups)
        with open(tmp, "rb+") as raw:
            os.fsync(raw.fileno())
        os.replace(tmp, target)
    except OSError as error:  # e.g. a full disk: the previous checkpoint is untouched
        tmp.unlink(missing_ok=True)
        raise naming(error, target) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return target


def _ensure_space(folder: Path, groups: dict[str, list[tuple[str, np.ndarray]]],
                  target: Path) -> None:
    """Refuse a checkpoint the disk cannot hold before HDF5 starts writing it: h5py does
    not survive running out of space mid-file (its handles fail to close, and the process
    can crash), while a refusal here leaves the previous checkpoint and the run whole."""
    datasets = [value for values in groups.values() for _, value in values]
    needed = (sum(value.nbytes for value in datasets) + SPACE_PER_DATASET * len(datasets)
              + SPACE_SLACK)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"No space left on device (the checkpoint needs "
                                    f"{needed / 2**20:.1f} MiB, {free / 2**20:.1f} MiB free)",
                      str(target))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_meta(handle: h5py.File) -> dict[str, Any]:
    """The loop state and name an open checkpoint file records; KeyError or ValueError when
    it has none (a file cut short before its last write)."""
    return json.loads(handle.attrs["meta"])


def load_checkpoint(location: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint folder (or its .h5 file); CheckpointError if missing or corrupt."""
    location = Path(location)
    path = location if location.suffix == ".h5" else checkpoint_file(location)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with h5py.File(path, "r") as handle:
            meta = read_meta(handle)
            groups = {
                name: [(str(group[key].attrs["path"]), group[key][()]) for key in sorted(group)]
                for name, group in handle.items()
            }
    except (OSError, KeyError, ValueError) as error:
        raise CheckpointError(
            f"{path}: checkpoint is corrupt or unreadable ({error}); delete it to start over, "
            "or point --checkpoint at another one") from None
    return Checkpoint(path, groups, meta)


def assign_group(checkpoint: Checkpoint, name: str, variables: Sequence[Any]) -> None:
    """Assign saved values to `variables`, after checking that every one fits."""
    saved = checkpoint.groups.get(name)
    if saved is None:
        raise CheckpointError(f"{checkpoint.path}: has no {name!r} variables")
    if len(saved) != len(variables):
        saved_paths, paths = {path for path, _ in saved}, {v.path for v in variables}
        differences = [f"{where}: {', '.join(sorted(only)[:5])}" for where, only in
                       (("only in the checkpoint", saved_paths - paths),
                        (f"only in the {name}", paths - saved_paths)) if only]
        raise CheckpointError(
            f"{checkpoint.path}: holds {len(saved)} {name} variables, the {name} has "
            f"{len(variables)}" + (f" ({'; '.join(differences)})" if differences else "")
            + "; the checkpoint was made with a different config or an earlier blogml")
    for (path, value), variable in zip(saved, variables):
        if path != variable.path or tuple(value.shape) != tuple(variable.shape):
            raise CheckpointError(
                f"{checkpoint.path}: {name} variable {path!r} {tuple(value.shape)} does not fit "
                f"{variable.path!r} {tuple(variable.shape)}; the checkpoint was made with a "
                "different config")
    for (_, value), variable in zip(saved, variables):
        variable.assign(value)
