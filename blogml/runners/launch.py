"""From checked configs to runs: pick run directories, pick the backend, run each.

Planning (`plan_runs`) writes nothing and raises on every problem at once, so a batch of
configs either starts cleanly or fails before touching the disk. Keras is imported only
in `execute`, after the backend is set.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blogml import locks
from blogml.config.loader import LoadedConfig, dump_config
from blogml.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    BlogmlError,
    ConfigError,
    ConfigIssue,
    RunDirError,
    describe_os_error,
    os_error_exit_code,
)
from blogml.runners.console import run_logging
from blogml.runners.rundir import RunDir, effective_status, format_run_dir, write_text_atomic
from blogml.runners.signals import StopSignal
from blogml.runners.workers import is_chief_process
from blogml.tasks.configs import check_config

log = logging.getLogger("blogml")


@dataclass
class RunPlan:
    loaded: LoadedConfig
    run_dir: RunDir
    resume: bool  # continue from checkpoints/last
    skip: str = ""  # why nothing needs doing (a finished run under --resume)
    scratch: bool = False  # a multi_worker non-chief's throwaway run dir (see _plan_worker)


@dataclass
class Outcome:
    source: str
    run_dir: str
    status: str
    exit_code: int
    step: int | None = None
    best: tuple[str, float | None] | None = None
    wall_seconds: float | None = None
    message: str = ""


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    """A config without its run_dir: what must match for a run to be resumed with it."""
    return {k: v for k, v in values.items() if k != "run_dir"}


def _stored_config(run_dir: RunDir) -> dict[str, Any]:
    """A run's config.yaml resolved by today's schema: a key added since the run was made
    gets its default, as in a config checked now, so it does not count as a difference."""
    raw = run_dir.read_config()
    values, issues = check_config(raw, str(run_dir.config))
    return raw if issues else values


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(a) + [k for k in b if k not in a]
        return [d for k in keys
                for d in _differences(a.get(k), b.get(k), f"{path}.{k}".lstrip("."))]
    return [] if a == b else [path]


def _find_previous(loaded: LoadedConfig) -> RunDir | None:
    """The newest run made from this same config (for `--resume` without `--run-dir`)."""
    pattern = format_run_dir(loaded, "*")
    candidates = sorted((RunDir(p) for p in Path().glob(pattern) if (p / "config.yaml").is_file()),
                        key=lambda r: r.config.stat().st_mtime, reverse=True)
    for run_dir in candidates:
        try:
            if _comparable(_stored_config(run_dir)) == _comparable(loaded.values):
                return run_dir
        except (OSError, BlogmlError, ValueError):
            continue
    return None


def _plan_one(loaded: LoadedConfig, run_dir_option: str | None, resume: bool, when: str,
              taken: set[Path]) -> RunPlan:
    if resume:
        run_dir = RunDir(run_dir_option) if run_dir_option else _find_previous(loaded)
        if run_dir is not None and run_dir.is_run():
            differs = _differences(_comparable(_stored_config(run_dir)),
                                   _comparable(loaded.values))
            if differs:
                raise RunDirError(
                    f"{run_dir}: was run with a different config ({', '.join(differs)} differ "
                    f"from {loaded.source}); resume it without a config "
                    f"(blogml train --run-dir {run_dir} --resume) or start a new run")
            holder = locks.held_by(run_dir.lock)
            if holder:
                raise RunDirError(f"{run_dir}: in use by {holder}; wait for it to end, or "
                                  "stop that process")
            summary = run_dir.read_summary()
            status = effective_status(summary)
            if status == "running":
                raise RunDirError(f"{run_dir}: is still running (pid {summary.get('pid')})")
            if status == "finished":
                return RunPlan(loaded, run_dir, resume=False, skip="already finished")
            has_checkpoint = run_dir.checkpoint("last").joinpath("checkpoint.h5").is_file()
            return RunPlan(loaded, run_dir, resume=has_checkpoint)
        if run_dir is not None:
            return RunPlan(loaded, run_dir, resume=False)
    path = Path(run_dir_option or format_run_dir(loaded, when))
    if run_dir_option and RunDir(path).is_run():
        raise RunDirError(f"{path}: already holds a run; pass --resume to continue it, "
                          "or choose another --run-dir")
    base, suffix = path, 2
    while path in taken or (path.exists() and any(path.iterdir())):
        if run_dir_option:
            raise RunDirError(f"{path}: exists and is not empty; choose another --run-dir")
        path = base.with_name(f"{base.name}-{suffix}")
        suffix += 1
    return RunPlan(loaded, RunDir(path), resume=False)


def _plan_worker(loaded: LoadedConfig, run_dir_option: str | None, resume: bool) -> RunPlan:
    """A non-chief worker of a `multi_worker` run: it trains in step with the chief, which
    alone owns the run dir, so it writes into a scratch dir, removed at its end. Resuming,
    it starts from a copy of the chief's `checkpoints/last`, as the chief does."""
    scratch = RunDir(tempfile.mkdtemp(prefix="blogml-worker-"))
    shared = RunDir(run_dir_option) if run_dir_option else _find_previous(loaded)
    last = shared.checkpoint("last") if resume and shared is not None else None
    if last is None or not last.joinpath("checkpoint.h5").is_file():
        return RunPlan(loaded, scratch, resume=False, scratch=True)
    shutil.copytree(last, scratch.checkpoint("last"))
    return RunPlan(loaded, scratch, resume=True, scratch=True)


def plan_runs(configs: list[LoadedConfig], run_dir_option: str | None,
              resume: bool) -> list[RunPlan]:
    """Decide every run directory up front; raise one error listing every problem."""
    if run_dir_option and len(configs) > 1:
        raise RunDirError("--run-dir names one run directory; give one config with it")
    backends = {loaded.values["backend"] for loaded in configs}
    if len(backends) > 1:
        raise ConfigError([ConfigIssue(loaded.source, "backend",
                                       f"is {loaded.values['backend']}, but one invocation runs "
                                       f"one backend (got {', '.join(sorted(backends))}); "
                                       "train them in separate commands")
                           for loaded in configs])
    when = time.strftime("%Y%m%d-%H%M%S")
    plans, problems, taken = [], [], set()
    for loaded in configs:
        try:
            if is_chief_process(loaded.values["distribution"]):
                plan = _plan_one(loaded, run_dir_option, resume, when, taken)
            else:
                plan = _plan_worker(loaded, run_dir_option, resume)
        except BlogmlError as error:
            problems.append(str(error))
            continue
        taken.add(plan.run_dir.path)
        plans.append(plan)
    if problems:
        discard(plans)
        raise RunDirError("\n".join(problems))
    return plans


def discard(plans: list[RunPlan]) -> None:
    """Remove the scratch dirs of planned runs that will not be executed."""
    for plan in plans:
        if plan.scratch:
            shutil.rmtree(plan.run_dir.path, ignore_errors=True)


def config_from_run_dir(run_dir: str) -> LoadedConfig:
    """The checked config stored in a run directory (for eval and config-less resume)."""
    values, issues = check_config(RunDir(run_dir).read_config(), str(RunDir(run_dir).config))
    if issues:
        raise ConfigError(issues)
    return LoadedConfig(str(RunDir(run_dir).config), values)


def select_backend(backend: str) -> None:
    """Set KERAS_BACKEND before Keras is first imported; refuse to switch afterwards."""
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise BlogmlError(f"Keras is already running on {keras.backend.backend()}; "
                              f"cannot switch to {backend} in this process")
        return
    os.environ["KERAS_BACKEND"] = backend
    # 3: TensorFlow's native log shows fatal errors only. At 2 its graph optimiser prints
    # "E0000 ... meta_optimizer.cc ... remapper failed" on every VQ-VAE run (a fusion it
    # skips, harmless); real failures still reach Python as exceptions. Set the variable
    # lower to see that log.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _native_stderr_silenced():
        import keras  # noqa: F401


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide what native code prints while Keras (and TensorFlow) load.

    TensorFlow's C++ start-up lines ("oneDNN custom operations are on", absl's "log messages
    before InitializeLog") bypass TF_CPP_MIN_LOG_LEVEL; they would open every run's output.
    Python exceptions are unaffected: they are raised after stderr is back.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def build_runner(loaded: LoadedConfig, run_dir: RunDir, fresh_session: bool = True,
                 distributed: bool = True) -> Any:
    """The task's runner, set up (data, model, optimizer built).

    `fresh_session=False` for a runner built inside another's setup (the prior loads its
    VQ-VAE run): clearing the session then would pull the ground from under the caller.
    `distributed=False` builds it on one device whatever its `distribution.strategy` (to
    evaluate, predict or sample, or inside another run).
    """
    from blogml.tasks.registry import TASKS

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
    run = RunDir(run_dir)
    if not run.is_run():
        raise RunDirError(f"{run_dir}: not a run directory (no config.yaml)")
    config = config_from_run_dir(run_dir)
    select_backend(config.values["backend"])  # before anything imports Keras
    from blogml.runners.checkpoint import load_checkpoint

    location = run.checkpoint(checkpoint) if checkpoint in ("best", "last") else Path(checkpoint)
    loaded = load_checkpoint(location)  # before building: a bad path fails fast
    runner = build_runner(config, run, distributed=False)
    runner.restore(loaded)
    return runner, loaded


def evaluate_run(run_dir: str, checkpoint: str, split: str) -> dict[str, Any]:
    """Metrics of `split` with a checkpoint's weights (the EMA ones when the run keeps
    an EMA for evaluation). `write_evaluation` keeps them in the run dir."""
    from blogml.tasks.registry import TASKS

    config = config_from_run_dir(run_dir)
    select_backend(config.values["backend"])  # the runner's module imports Keras
    task = config.task
    splits = TASKS[task].runner_class().splits
    if split not in splits:  # before the model is built and its checkpoint read
        raise BlogmlError(f"--split {split}: the splits of task {task} are "
                          + ", ".join(splits))
    runner, loaded = trained_runner(run_dir, checkpoint)
    with runner.evaluation_weights():
        metrics = runner.evaluate(split)
    return {"split": split, "checkpoint": str(loaded.path),
            "step": loaded.meta["loop"]["step"], **metrics}


def write_evaluation(run_dir: str, result: dict[str, Any]) -> Path:
    """RUN_DIR/eval_<split>.json, written whole or not at all."""
    path = Path(run_dir) / f"eval_{result['split']}.json"
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    return path


def execute(plan: RunPlan) -> Outcome:
    """Run one planned training run to its end (or its stop), holding the run dir's lock.

    A run whose setup fails, however it fails, leaves no run dir behind when it made the
    dir; a resumed one is left as it was (its checkpoints and status untouched).
    """
    if plan.skip:
        summary = plan.run_dir.read_summary() or {}
        best = summary.get("best") or {}
        return Outcome(plan.loaded.source, str(plan.run_dir), f"skipped ({plan.skip})", EXIT_OK,
                       summary.get("step"), (best.get("metric"), best.get("value")),
                       summary.get("wall_seconds"))
    fresh = not plan.run_dir.path.exists()
    try:
        plan.run_dir.path.mkdir(parents=True, exist_ok=True)
        with locks.exclusive(plan.run_dir.lock, f"run dir {plan.run_dir}"):
            return _execute_locked(plan, fresh)
    except locks.LockedError as error:  # another process owns the dir: leave it alone
        return Outcome(plan.loaded.source, str(plan.run_dir), "error", EXIT_BAD_INPUT,
                       message=str(error))
    except BlogmlError as error:
        return _setup_failed(plan, fresh, str(error), EXIT_BAD_INPUT)
    except OSError as error:  # the run dir cannot be written: read-only, full, no permission
        return _setup_failed(plan, fresh, describe_os_error(error), os_error_exit_code(error))
    except KeyboardInterrupt:  # stopped before training started
        return _setup_failed(plan, fresh, "stopped during setup; nothing trained",
                             EXIT_INTERRUPTED, "interrupted")
    except Exception as error:  # a crash in task code while building (logged in full)
        return _setup_failed(plan, fresh, f"setup crashed: {type(error).__name__}: {error}",
                             EXIT_FAILED)
    finally:
        if plan.scratch:
            shutil.rmtree(plan.run_dir.path, ignore_errors=True)


def _setup_failed(plan: RunPlan, fresh: bool, message: str, exit_code: int,
                  status: str = "error") -> Outcome:
    if fresh:
        shutil.rmtree(plan.run_dir.path, ignore_errors=True)
    return Outcome(plan.loaded.source, str(plan.run_dir), status, exit_code, message=message)


def _execute_locked(plan: RunPlan, fresh: bool) -> Outcome:
    if not plan.resume:
        plan.run_dir.create()
        write_text_atomic(plan.run_dir.config, dump_config(plan.loaded.values))
    runner = None
    try:
        # From the start of setup: what the data report says belongs in train.log too.
        with run_logging(plan.run_dir.log):
            # A stop during setup (loading data, building the model) ends the run before
            # its first step; a second one at once (KeyboardInterrupt, see StopSignal).
            with StopSignal() as stop:
                try:
                    runner = build_runner(plan.loaded, plan.run_dir)
                except (BlogmlError, OSError):
                    raise
                except Exception:  # a bug, not bad input: the traceback is what to report
                    log.error("setup crashed:\n%s", traceback.format_exc())
                    raise
            if stop.requested:
                raise KeyboardInterrupt
            result = runner.train(resume=plan.resume)
    finally:
        if runner is not None:
            runner.close()
    return Outcome(plan.loaded.source, str(plan.run_dir), result.status, result.exit_code,
                   result.step, result.best, result.wall_seconds, result.message)
