"""What a `task: vqvae_prior` run needs of its VQ-VAE run, checked before any compute is spent.

The prior encodes the VQ-VAE run's own data with one of its checkpoints: so the run dir
must be a `task: vqvae` run, hold that checkpoint, and its data must pass the vqvae checks.
In a study the VQ-VAE run may not exist yet, because an earlier config of the same command
makes it: the prior is then checked through that config. Keras-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py

from blogml.config.loader import LoadedConfig, read_yaml
from blogml.data.hdf5 import batch_problem, open_cache, split_problem
from blogml.errors import BlogmlError, ConfigIssue
from blogml.runners import checkpoint as ckpt
from blogml.runners.rundir import RunDir
from blogml.runners.vqvae import checks as vqvae_checks
from blogml.tasks.configs import check_config
from blogml.tasks.vqvae_prior import DATA

RUN_KEY = "data.vqvae_run"


def check_data(values: dict[str, Any], source: str,
               planned: Mapping[Path, LoadedConfig] | None = None) -> list[ConfigIssue]:
    """Every problem of `data.vqvae_run` that would stop training. `planned` maps the run
    dirs that earlier configs of the same command will make (resolved) to those configs."""
    data = values["data"]
    run = RunDir(data["vqvae_run"])
    maker = (planned or {}).get(run.path.resolve())
    if maker is not None:
        if maker.task != "vqvae":
            return [ConfigIssue(source, RUN_KEY,
                                f"{run} is made by {maker.source}, a task {maker.task} config; "
                                "point it at the run dir of a task: vqvae config")]
        vqvae = maker.values  # its data is checked as that config's own
        issues = []
    else:
        vqvae, issues = _stored_vqvae_config(run, source)
        if vqvae is None:
            return issues
        problem = _checkpoint_problem(run, data["checkpoint"])
        if problem:
            issues.append(ConfigIssue(source, "data.checkpoint", problem))
        issues += [ConfigIssue(source, RUN_KEY, f"the data of {run}: {issue}")
                   for issue in vqvae_checks.check_data(vqvae, str(run.config))]
    return issues + _batch_issues(vqvae, values["train"]["batch_size"], source)


def _stored_vqvae_config(run: RunDir, source: str
                         ) -> tuple[dict[str, Any] | None, list[ConfigIssue]]:
    """The checked config of the vqvae run in `run`, or None and why it is not one."""
    if not run.path.exists():
        return None, [ConfigIssue(source, RUN_KEY, f"{str(run)!r} does not exist; "
                                                   f"{DATA.fields['vqvae_run'].hint}")]
    raw, reason = read_yaml(str(run.config)) if run.is_run() else (None, None)
    if raw is None:
        what = (f"{run.config}: {reason}" if reason
                else f"{run}: not a run directory (no config.yaml)")
        return None, [ConfigIssue(source, RUN_KEY, f"{what}; point it at the run dir of a "
                                                   "trained task: vqvae run")]
    if raw.get("task") != "vqvae":
        return None, [ConfigIssue(source, RUN_KEY,
                                  f"{run} is a run of task {raw.get('task')!r} ({run.config}); "
                                  "point it at the run dir of a task: vqvae run")]
    values, problems = check_config(raw, str(run.config))
    if problems:
        return None, [ConfigIssue(source, RUN_KEY, f"the config of {run}: {problem}")
                      for problem in problems]
    return values, []


def _checkpoint_problem(run: RunDir, name: str) -> str | None:
    """Why `checkpoints/<name>/checkpoint.h5` of `run` cannot be restored, or None: it must
    open as HDF5 and hold the loop state that every checkpoint has."""
    path = ckpt.checkpoint_file(run.checkpoint(name))
    if not path.is_file():
        return (f"{path}: not found; the run has no {name!r} checkpoint yet (train it on: "
                f"`blogml train --run-dir {run} --resume`)")
    try:
        with h5py.File(path, "r") as handle:
            ckpt.read_meta(handle)
    except (OSError, KeyError, ValueError) as error:
        return f"{path}: checkpoint is corrupt or unreadable ({error}); train {run} again"
    return None


def _batch_issues(vqvae: dict[str, Any], batch_size: int, source: str) -> list[ConfigIssue]:
    """The prior trains on the code grids of the VQ-VAE's training images: one batch of
    them at least. Nothing to say when the cache itself is broken (reported on its own)."""
    data = vqvae["data"]
    try:
        with open_cache(data["path"]) as h5:
            if split_problem(h5, data["train_split"]):
                return []
            count = h5[data["train_split"]].shape[0]
    except BlogmlError:
        return []
    problem = batch_problem(data["train_split"], count, batch_size)
    return [ConfigIssue(source, "train.batch_size", f"{data['path']}: {problem} (the prior "
                                                    "trains on their code grids)")
            ] if problem else []
