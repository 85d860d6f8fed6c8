"""Which run directory each config trains in: planned before anything is written.

`plan_runs` writes nothing (but a multi_worker non-chief's scratch dir) and raises on every
problem at once, so a batch of configs either starts cleanly or fails before touching the
disk.
"""

from __future__ import annotations

import glob
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blogml import locks
from blogml.config.loader import LoadedConfig
from blogml.errors import BlogmlError, ConfigError, ConfigIssue, RunDirError
from blogml.runners.checkpoint import checkpoint_file
from blogml.runners.rundir import RunDir, effective_status, format_run_dir
from blogml.runners.workers import is_chief_process
from blogml.tasks.configs import check_config


@dataclass
class RunPlan:
    loaded: LoadedConfig
    run_dir: RunDir
    resume: bool  # continue from checkpoints/last
    skip: str = ""  # why nothing needs doing (a finished run under --resume)
    scratch: bool = False  # a multi_worker non-chief's throwaway run dir (see _plan_worker)


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
    # any {time}; everything else literally (a swept list's label holds brackets)
    pattern = glob.escape(format_run_dir(loaded, "\0")).replace("\0", "*")
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
        if run_dir is not None:
            return _plan_resume(loaded, run_dir)
    return _plan_fresh(loaded, run_dir_option, when, taken)


def _plan_resume(loaded: LoadedConfig, run_dir: RunDir) -> RunPlan:
    """`--resume` of `run_dir`: refused when it holds a run of another config or one in
    progress; a finished run is skipped; a run dir without a run (or a checkpoint yet)
    starts from step 0 there."""
    if not run_dir.is_run():
        return RunPlan(loaded, run_dir, resume=False)
    differs = _differences(_comparable(_stored_config(run_dir)), _comparable(loaded.values))
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
    has_checkpoint = checkpoint_file(run_dir.checkpoint("last")).is_file()
    return RunPlan(loaded, run_dir, resume=has_checkpoint)


def _plan_fresh(loaded: LoadedConfig, run_dir_option: str | None, when: str,
                taken: set[Path]) -> RunPlan:
    """A new run: `--run-dir` as given (refused if it holds anything), else the config's
    `run_dir` template, with -2, -3, ... when another run of this command or an earlier
    one holds that name."""
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
    if last is None or not checkpoint_file(last).is_file():
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


def plan_retry(plan: RunPlan) -> RunPlan:
    """The same run again after its worker process died (a crash, a kill, a lost node):
    from its last checkpoint, or from step 0 when it died before the first one. Its
    summary may still say `running` (nothing was left to change it), so it is not asked."""
    resume = checkpoint_file(plan.run_dir.checkpoint("last")).is_file()
    return RunPlan(plan.loaded, plan.run_dir, resume=resume)
