"""What a `task: vqvae` run needs of its image cache, checked before any compute is spent.

Only metadata is read (shapes, dtypes, attributes), never pixels, so a study checks every
config in a moment. Keras-free: `blogml config check --data` runs it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from blogml.config.loader import LoadedConfig
from blogml.data.hdf5 import batch_problem, open_cache, split_problem
from blogml.errors import BlogmlError, ConfigIssue

SPLIT_KEYS = ("train_split", "val_split")


def check_data(values: dict[str, Any], source: str,
               planned: Mapping[Path, LoadedConfig] | None = None) -> list[ConfigIssue]:
    """Every problem of the cache at `data.path` that would stop training: not HDF5, a
    split missing, empty, not square uint8 RGB, splits of different sizes, fewer images
    than one batch (`train.batch_size`) or than the sample grid draws (`train.sample_count`,
    from the val split). `planned` (runs other configs will make) is not needed here."""
    data, train = values["data"], values["train"]
    path = data["path"]
    try:
        h5 = open_cache(path)
    except BlogmlError as error:
        return [ConfigIssue(source, "data.path", str(error))]
    issues = []
    with h5:
        shapes = {}
        for key in SPLIT_KEYS:
            problem = split_problem(h5, data[key])
            if problem:
                issues.append(ConfigIssue(source, f"data.{key}", f"{path}: {problem}"))
            else:
                shapes[key] = h5[data[key]].shape
        size = h5.attrs.get("size")
    issues += _size_issues(path, data, shapes, size, source)
    if "train_split" in shapes:
        problem = batch_problem(data["train_split"], shapes["train_split"][0],
                                train["batch_size"])
        if problem:
            issues.append(ConfigIssue(source, "train.batch_size", f"{path}: {problem}"))
    if "val_split" in shapes and shapes["val_split"][0] < train["sample_count"]:
        issues.append(ConfigIssue(
            source, "train.sample_count",
            f"{train['sample_count']} images per sample grid, but split "
            f"{data['val_split']!r} of {path} has {shapes['val_split'][0]}; lower "
            "train.sample_count"))
    return issues


def _size_issues(path: str, data: dict[str, Any], shapes: dict[str, tuple], size: Any,
                 source: str) -> list[ConfigIssue]:
    """The model is built for one image size: every split must have it, and it must be the
    size `blogml data prepare` wrote into the cache (its `size` attribute), if there is one."""
    sizes = {key: shape[1] for key, shape in shapes.items()}
    issues = []
    if size is not None:
        for key, side in sizes.items():
            if side != int(size):
                issues.append(ConfigIssue(
                    source, f"data.{key}",
                    f"{path}: split {data[key]!r} holds {side}x{side} images, but the cache "
                    f"was prepared at size {int(size)}; make it again with `blogml data "
                    "prepare`"))
    elif len(set(sizes.values())) > 1:
        issues.append(ConfigIssue(
            source, "data.val_split",
            f"{path}: split {data['val_split']!r} holds {sizes['val_split']}px images, split "
            f"{data['train_split']!r} {sizes['train_split']}px; every split must be the size "
            "the model is built for: make the cache again with `blogml data prepare`"))
    return issues
