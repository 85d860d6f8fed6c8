"""A task's runner, built from a config or from a run directory (Keras is imported here,
after the backend is chosen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blogml.config.loader import LoadedConfig
from blogml.errors import ConfigError
from blogml.runners.backend import select_backend
from blogml.runners.rundir import RunDir
from blogml.tasks.configs import check_config
from blogml.tasks.registry import TASKS


def config_from_run_dir(run_dir: str) -> LoadedConfig:
    """The checked config stored in a run directory (for eval and config-less resume)."""
    run = RunDir(run_dir)
    values, issues = check_config(run.read_config(), str(run.config))
    if issues:
        raise ConfigError(issues)
    return LoadedConfig(str(run.config), values)


def build_runner(loaded: LoadedConfig, run_dir: RunDir, fresh_session: bool = True,
                 distributed: bool = True) -> Any:
    """The task's runner, set up (data, model, optimizer built).

    `fresh_session=False` for a runner built inside another's setup (the prior loads its
    VQ-VAE run): clearing the session then would pull the ground from under the caller.
    `distributed=False` builds it on one device whatever its `distribution.strategy` (to
    evaluate, predict or sample, or inside another run).
    """
    select_backend(loaded.values["backend"])
    if fresh_session:
        import keras

        # A fresh session per run: variable names (and so checkpoint paths) do not depend
        # on what ran before in this process.
        keras.backend.clear_session()
    runner = TASKS[loaded.task].runner_class()(loaded.values, run_dir, loaded.source)
    runner.setup(distributed=distributed)
    return runner


def trained_runner(run_dir: str, checkpoint: str = "best") -> tuple[Any, Any]:
    """(runner, checkpoint) of RUN_DIR, with the checkpoint (best, last, or a path) restored."""
    return restored_runner(RunDir(run_dir), config_from_run_dir(run_dir), checkpoint)


def restored_runner(run: RunDir, config: LoadedConfig,
                    checkpoint: str = "best") -> tuple[Any, Any]:
    """`trained_runner` for a run whose stored config the caller has read already."""
    select_backend(config.values["backend"])  # before anything imports Keras
    from blogml.runners.checkpoint import load_checkpoint

    location = run.checkpoint(checkpoint) if checkpoint in ("best", "last") else Path(checkpoint)
    loaded = load_checkpoint(location)  # before building: a bad path fails fast
    runner = build_runner(config, run, distributed=False)
    runner.restore(loaded)
    return runner, loaded
