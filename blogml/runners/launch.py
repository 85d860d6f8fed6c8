"""Running one planned run (`planning.RunPlan`) to its end, holding its run dir's lock.

Setup failures of every kind become an `Outcome` with the exit code of their kind, and a
run dir that the failed run made is removed again. Keras is imported only when the runner
is built, after the backend is set.
"""

from __future__ import annotations

import logging
import shutil
import traceback
from dataclasses import dataclass

from blogml import locks
from blogml.config.loader import dump_config
from blogml.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    BlogmlError,
    describe_os_error,
    os_error_exit_code,
)
from blogml.runners import tracking
from blogml.runners.building import build_runner
from blogml.runners.console import run_logging
from blogml.runners.planning import RunPlan
from blogml.runners.rundir import write_text_atomic
from blogml.runners.signals import StopSignal

log = logging.getLogger("blogml")


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

    def ends_study(self, stop_on_error: bool) -> bool:
        """Whether no further run of its study should start after this one: it was
        stopped, or it failed and the study stops on errors."""
        return self.exit_code == EXIT_INTERRUPTED or (stop_on_error and self.exit_code != EXIT_OK)


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
            if not plan.scratch:  # a multi_worker non-chief: the chief's run is the record
                tracking.record(plan.loaded, plan.run_dir, result)
    finally:
        if runner is not None:
            runner.close()
    return Outcome(plan.loaded.source, str(plan.run_dir), result.status, result.exit_code,
                   result.step, result.best, result.wall_seconds, result.message)
