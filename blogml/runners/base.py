"""The training loop every task shares: one place for checkpoints, resume, logging and stops.

A task subclasses :class:`BaseRunner` and says only what is its own: the data
(`build_data`, `eval_batches`), the model (`build_model`, `compile_args`). The loop drives
`model.train_on_batch`, which is public, identical on every Keras backend, honours a
model's own `train_step`, and (measured) costs no more per step than `model.fit`; owning
the loop lets a stop, an evaluation or a checkpoint land on any step, which exact resume
needs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras

from blogml.data.batches import Batch
from blogml.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    BlogmlError,
    describe_os_error,
)
from blogml.optimizers import build_optimizer
from blogml.optimizers.derived import DerivedOptimizer
from blogml.runners import checkpoint as ckpt
from blogml.runners import precision, strategies
from blogml.runners.events import EventLog, read_events
from blogml.runners.loop_actions import (
    DrawSamples,
    EpochBars,
    LogWindow,
    LoopAction,
    LoopState,
    RunClock,
    SaveLast,
    ValidateAndKeepBest,
)
from blogml.runners.plots import plot_curves
from blogml.runners.rundir import RunDir
from blogml.runners.signals import StopSignal
from blogml.runners.versions import environment_versions

log = logging.getLogger("blogml")


@dataclass
class RunResult:
    status: str
    exit_code: int
    step: int
    best: tuple[str, float | None]
    wall_seconds: float
    message: str = ""


class BaseRunner:
    """Shared training loop; subclasses provide data and model."""

    splits: tuple[str, ...] = ("val", "test")  # what `blogml eval --split` accepts

    def __init__(self, config: dict[str, Any], run_dir: RunDir, source: str = "") -> None:
        self.config = config
        self.run_dir = run_dir
        self.source = source
        self.train_config = config["train"]
        self.model: keras.Model | None = None

    # ---- what a task provides ---------------------------------------------------------

    def build_data(self) -> None:
        """Prepare the data; set `self.batches_per_pass`."""
        raise NotImplementedError

    def train_batches(self, start_step: int) -> Iterator[Batch]:
        """Endless training batches from global step `start_step` (deterministic order)."""
        raise NotImplementedError

    def eval_batches(self, split: str) -> Iterator[Batch]:
        """Every example of `split` once, in batches."""
        raise NotImplementedError

    def build_model(self) -> keras.Model:
        raise NotImplementedError

    def compile_args(self) -> dict[str, Any]:
        """`loss` and `metrics` for `model.compile` (the optimizer comes from the config)."""
        raise NotImplementedError

    def data_report(self) -> dict[str, Any]:
        """What summary.json should say about the data (e.g. how much of it was usable)."""
        return {}

    def task_actions(self) -> list[LoopAction]:
        """The task's own periodic jobs, run after validation and before the checkpoint of
        a step (see `loop_actions`); the image tasks draw samples."""
        return []

    def sample_action(self, draw: Callable[[int], None]) -> DrawSamples:
        """`draw(step)` every `train.sample_every` steps (default: with each validation)
        and at the end: for the tasks whose config has the sample keys."""
        return DrawSamples(self, self.train_config["sample_every"] or self.eval_every, draw)

    # ---- setup ------------------------------------------------------------------------

    def setup(self, distributed: bool = True) -> None:
        """Seed everything, build data and the compiled model with its optimizer, under
        the dtype policy of `train.mixed_precision` (layers keep the policy they are built
        with; the global one is restored afterwards, see `precision`) and in the scope of
        `distribution.strategy` (one device when not `distributed`: evaluating, predicting,
        or a run loaded by another run)."""
        keras.utils.set_random_seed(self.config["seed"])
        strategy = self.config["distribution"]["strategy"] if distributed else "none"
        self.distribution = strategies.create({**self.config["distribution"],
                                                 "strategy": strategy},
                                                self.train_config["batch_size"])
        policy = precision.policy_name(self.train_config["mixed_precision"])
        precision.warn_of_float16_on_a_jax_cpu(policy)
        with precision.policy_scope(policy):
            self.build_data()
            with self.distribution.scope():
                model = self.build_model()
                # Under mixed_float16 this wraps the optimizer in a LossScaleOptimizer.
                model.compile(optimizer=build_optimizer(self.config["optimizer"]),
                              jit_compile=self.train_config["jit_compile"],
                              **self.compile_args())
                # Optimizer variables must exist before a checkpoint can be restored into them.
                model.optimizer.build(model.trainable_variables)
        self.model = model

    def close(self) -> None:
        """Release what the run's distribution set for the process (JAX's global one)."""
        self.distribution.close()

    @property
    def steps_per_epoch(self) -> int:
        return self.train_config["steps_per_epoch"] or self.batches_per_pass

    @property
    def total_steps(self) -> int:
        return self.train_config["epochs"] * self.steps_per_epoch

    @property
    def eval_every(self) -> int:
        return self.train_config["eval_every"] or self.steps_per_epoch

    @property
    def monitor(self) -> str:
        return self.train_config["monitor"]

    def checkpoint_variables(self) -> dict[str, list[Any]]:
        return {"model": list(self.model.variables),
                "optimizer": list(self.model.optimizer.variables)}

    def restore(self, checkpoint: ckpt.Checkpoint) -> None:
        variables = self.checkpoint_variables()
        ckpt.assign_group(checkpoint, "model", variables["model"])
        ckpt.assign_group(checkpoint, "optimizer", variables["optimizer"])

    def evaluation_weights(self) -> contextlib.AbstractContextManager:
        """The weights to evaluate, predict and keep as `best` with: the EMA of the weights
        when the optimizer keeps one for evaluation (`optimizer.ema`), else the weights."""
        optimizer = precision.base_optimizer(self.model.optimizer)
        if isinstance(optimizer, DerivedOptimizer):
            return optimizer.evaluation_weights()
        return contextlib.nullcontext()

    # ---- evaluation -------------------------------------------------------------------

    def evaluate(self, split: str) -> dict[str, float]:
        """Mean of each compiled metric over every example of `split`: the batches' values
        weighted by their sizes, which is exact for metrics that average over examples (a
        task with a metric of the whole split uses `Distribution.evaluate`, the VQ-VAE)."""
        totals: dict[str, float] = {}
        count = 0
        for batch in self.eval_batches(split):
            logs = self.distribution.test_on_batch(self.model, batch)
            size = len(keras.tree.flatten(batch[0])[0])  # inputs may be a dict of arrays
            for name, value in logs.items():
                totals[name] = totals.get(name, 0.0) + float(value) * size
            count += size
        return {name: total / count for name, total in totals.items()}

    # ---- the loop ---------------------------------------------------------------------

    def train(self, resume: bool = False) -> RunResult:
        """Train to `train.epochs`, from `checkpoints/last` when `resume`. Logs to the
        `blogml` logger: `launch.execute` routes it to the console and train.log."""
        state = LoopState()
        if resume:
            checkpoint = ckpt.load_checkpoint(self.run_dir.checkpoint("last"))
            self.restore(checkpoint)
            state = LoopState(**checkpoint.meta["loop"])
            log.info("resuming %s at step %d of %d", self.run_dir, state.step, self.total_steps)
        else:
            log.info("starting %s (%s): %d steps", self.run_dir, self.source or "config",
                     self.total_steps)
        self.events = EventLog(self.run_dir, resume_step=state.step if resume else None)
        self.clock = RunClock(state)
        self._write_summary(state, "running")
        # Signals stay caught through the plots: a second Ctrl-C there skips them (exit 130,
        # summary written) instead of killing the process with the default handler.
        with StopSignal() as stop:
            result = self._run_loop(state, stop)
            self._plot()
        return result

    def _run_loop(self, state: LoopState, stop: StopSignal) -> RunResult:
        """The loop, with every way it can end turned into a result and a summary."""
        try:
            return self._loop(state, stop)
        except KeyboardInterrupt:
            return self._finish(state, "interrupted", EXIT_INTERRUPTED,
                                "interrupted twice; state of the last checkpoint kept")
        except OSError as error:  # a full disk, a folder made read-only under the run
            return self._finish(state, "failed", EXIT_FAILED,
                                f"stopped at step {state.step}: {describe_os_error(error)}; "
                                "the last complete checkpoint is kept, resume with --resume")
        except Exception as error:  # a crash in task code: record it, keep the run dir usable
            log.error("training crashed:\n%s", traceback.format_exc())
            return self._finish(state, "failed", EXIT_FAILED,
                                f"crashed: {type(error).__name__}: {error}")
        finally:
            try:
                self.events.close()
            except OSError as error:
                log.error("could not finish the event files: %s", describe_os_error(error))

    def _loop(self, state: LoopState, stop: StopSignal) -> RunResult:
        """Step until `train.epochs` are done, a stop is requested or the loss is not finite;
        after each step the loop's actions do their periodic jobs (`loop_actions`)."""
        config = self.train_config
        bars = EpochBars(self.steps_per_epoch, config["epochs"])
        # In this order: the window is logged on the epoch's bar before `bars` closes it, the
        # validation and samples of a step precede its checkpoint.
        actions = [LogWindow(self, bars, config["log_every"]), bars,
                   ValidateAndKeepBest(self, self.eval_every), *self.task_actions(),
                   SaveLast(self, config["checkpoint_every"] or self.steps_per_epoch)]
        batches = self.train_batches(state.step)
        ended = None
        try:
            while state.step < self.total_steps:
                bar = bars.open(state.step)
                logs = self.distribution.train_on_batch(self.model, next(batches))
                state.step += 1
                bar.update(1)
                loss = float(logs["loss"])
                if not math.isfinite(loss):
                    ended = ("failed", EXIT_FAILED, f"loss is {loss} at step {state.step}; "
                             "stopped, the last good checkpoint is kept")
                    break
                for action in actions:
                    action.after_step(state, logs, stopping=bool(stop.requested))
                if stop.requested:
                    ended = ("interrupted", EXIT_INTERRUPTED, f"stopped by {stop.requested} "
                             f"at step {state.step}; resume with --resume")
                    break
        finally:
            bars.close()
        if ended is not None:
            return self._finish(state, *ended)
        self.save("last", state)
        return self._finish(state, "finished", EXIT_OK, "")

    def save(self, name: str, state: LoopState) -> None:
        """checkpoints/<name> (best or last) with the loop state; summary.json with last."""
        self.clock.tick()
        ckpt.save_checkpoint(self.run_dir.checkpoint(name), self.checkpoint_variables(),
                             {"loop": asdict(state), "checkpoint": name})
        if name == "last":
            self._write_summary(state, "running")

    def _finish(self, state: LoopState, status: str, exit_code: int, message: str) -> RunResult:
        if message:
            (log.error if status == "failed" else log.info)(message)
        try:
            self._write_summary(state, status, message)
        except OSError as error:  # the disk is still full: say so, the checkpoints stand
            log.error("could not write summary.json: %s", describe_os_error(error))
        log.info("%s: %s at step %d/%d", self.run_dir, status, state.step, self.total_steps)
        return RunResult(status, exit_code, state.step, (self.monitor, state.best_value),
                         state.wall_seconds, message)

    def _write_summary(self, state: LoopState, status: str, message: str = "") -> None:
        self.clock.tick()
        train_seconds = state.wall_seconds - state.eval_seconds
        self.run_dir.write_summary({
            "status": status,
            "message": message,
            "task": self.config["task"],
            "config": self.source,
            "step": state.step,
            "total_steps": self.total_steps,
            "best": {"metric": self.monitor, "value": state.best_value, "step": state.best_step},
            "final": {"val": state.last_eval, "train": self.events.last.get("train", {})},
            **({"data": report} if (report := self.data_report()) else {}),
            "precision": precision.report(self.model),
            "distribution": {"strategy": self.config["distribution"]["strategy"],
                             "replicas": self.distribution.replicas,
                             # as Ray (or the user) restricted this process's GPUs
                             "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")},
            "wall_seconds": round(state.wall_seconds, 3),
            "train_seconds": round(train_seconds, 3),
            "steps_per_sec": round(state.step / train_seconds, 3) if train_seconds > 0 else None,
            "versions": environment_versions(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })

    def _plot(self) -> None:
        try:
            plot_curves(read_events(self.run_dir.metrics), self.run_dir.plots,
                        title=self.run_dir.path.name)
        except KeyboardInterrupt:  # a second stop request while drawing
            log.info("plots skipped: interrupted")
        except OSError as error:
            log.warning("could not draw plots: %s", describe_os_error(error))
        except Exception:  # plots are a convenience; never fail a finished run over one
            log.warning("could not draw plots:\n%s", traceback.format_exc())

    # ---- using a saved run ---------------------------------------------------------------

    def predict(self, input_path: Path, output_path: Path) -> Path:
        """Write predictions for `input_path`; tasks that predict override this."""
        raise BlogmlError(f"task {self.config['task']} has no `blogml predict`")

    def sample(self, output_path: Path, count: int, temperature: float, seed: int) -> Path:
        """Write `count` samples as a PNG grid; generative tasks override this."""
        raise BlogmlError(f"task {self.config['task']} has no `blogml sample`")
