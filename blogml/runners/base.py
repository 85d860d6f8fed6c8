"""The training loop every task shares: one place for checkpoints, resume, logging and stops.

A task subclasses :class:`BaseRunner` and says only what is its own: the data
(`build_data`, `eval_batches`), the model (`build_model`, `compile_args`). The loop drives
`model.train_on_batch`, which is public, identical on every Keras backend, honours a
model's own `train_step`, and (measured) costs no more per step than `model.fit`; owning
the loop lets a stop, an evaluation or a checkpoint land on any step, which exact resume
needs.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import keras

from blogml.data.batches import Batch
from blogml.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, CheckpointError
from blogml.optimizers import build_optimizer
from blogml.runners import checkpoint as ckpt
from blogml.runners.console import run_logging, progress_bar
from blogml.runners.events import EventLog, read_events
from blogml.runners.plots import plot_curves
from blogml.runners.rundir import RunDir
from blogml.runners.signals import StopSignal
from blogml.runners.versions import environment_versions

log = logging.getLogger("blogml")


@dataclass
class LoopState:
    """Everything besides variables that a checkpoint needs to continue exactly."""

    step: int = 0
    best_value: float | None = None
    best_step: int | None = None
    last_eval: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    # Running sums of the current logging window, so a resumed run logs the same means.
    window_sums: dict[str, float] = field(default_factory=dict)
    window_steps: int = 0


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

    # ---- setup ------------------------------------------------------------------------

    def setup(self) -> None:
        """Seed everything, build data and the compiled model with its optimizer."""
        keras.utils.set_random_seed(self.config["seed"])
        self.build_data()
        model = self.build_model()
        model.compile(optimizer=build_optimizer(self.config["optimizer"]),
                      jit_compile=self.train_config["jit_compile"], **self.compile_args())
        # Optimizer variables must exist before a checkpoint can be restored into them.
        model.optimizer.build(model.trainable_variables)
        self.model = model

    @property
    def steps_per_epoch(self) -> int:
        return self.train_config["steps_per_epoch"] or self.batches_per_pass

    @property
    def total_steps(self) -> int:
        return self.train_config["epochs"] * self.steps_per_epoch

    @property
    def monitor(self) -> str:
        return self.train_config["monitor"]

    def checkpoint_variables(self) -> dict[str, list[Any]]:
        return {"model": list(self.model.variables),
                "optimizer": list(self.model.optimizer.variables)}

    def restore(self, checkpoint: ckpt.Checkpoint, with_optimizer: bool = True) -> None:
        variables = self.checkpoint_variables()
        ckpt.assign_group(checkpoint, "model", variables["model"])
        if with_optimizer:
            ckpt.assign_group(checkpoint, "optimizer", variables["optimizer"])

    # ---- evaluation -------------------------------------------------------------------

    def evaluate(self, split: str) -> dict[str, float]:
        """Mean of each compiled metric over every example of `split`."""
        totals: dict[str, float] = {}
        count = 0
        for batch in self.eval_batches(split):
            logs = self.model.test_on_batch(*batch, return_dict=True)
            size = len(batch[0])
            for name, value in logs.items():
                totals[name] = totals.get(name, 0.0) + float(value) * size
            count += size
        return {name: total / count for name, total in totals.items()}

    # ---- the loop ---------------------------------------------------------------------

    def train(self, resume: bool = False) -> RunResult:
        """Train to `train.epochs`, from `checkpoints/last` when `resume`."""
        with run_logging(self.run_dir.log):
            state = LoopState()
            if resume:
                checkpoint = ckpt.load_checkpoint(self.run_dir.checkpoint("last"))
                self.restore(checkpoint)
                state = LoopState(**checkpoint.meta["loop"])
                log.info("resuming %s at step %d of %d", self.run_dir, state.step, self.total_steps)
            else:
                log.info("starting %s (%s): %d steps", self.run_dir, self.source or "config",
                         self.total_steps)
            events = EventLog(self.run_dir, resume_step=state.step if resume else None)
            self._write_summary(state, "running")
            try:
                with StopSignal() as stop:
                    result = self._loop(state, events, stop)
            except KeyboardInterrupt:
                result = self._finish(state, "interrupted", EXIT_INTERRUPTED,
                                      "interrupted twice; state of the last checkpoint kept")
            except Exception as error:  # a crash in task code: record it, keep the run dir usable
                log.error("training crashed:\n%s", traceback.format_exc())
                result = self._finish(state, "failed", EXIT_FAILED,
                                      f"crashed: {type(error).__name__}: {error}")
            finally:
                events.close()
            self._plot()
            return result

    def _loop(self, state: LoopState, events: EventLog, stop: StopSignal) -> RunResult:
        config = self.train_config
        eval_every = config["eval_every"] or self.steps_per_epoch
        checkpoint_every = config["checkpoint_every"] or self.steps_per_epoch
        log_every = config["log_every"]
        batches = self.train_batches(state.step)
        loop_start = time.perf_counter()
        clock = _Clock(state)
        window_start = time.perf_counter()
        bar = None
        while state.step < self.total_steps:
            epoch, position = divmod(state.step, self.steps_per_epoch)
            if bar is None:
                bar = progress_bar(self.steps_per_epoch, position,
                                   f"epoch {epoch + 1}/{config['epochs']}")
            logs = self.model.train_on_batch(*next(batches), return_dict=True)
            state.step += 1
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                bar.close()
                clock.update(loop_start)
                return self._finish(state, "failed", EXIT_FAILED,
                                    f"loss is {loss} at step {state.step}; stopped, the last "
                                    "good checkpoint is kept")
            for name, value in logs.items():
                state.window_sums[name] = state.window_sums.get(name, 0.0) + float(value)
            state.window_steps += 1
            bar.update(1)
            if state.step % log_every == 0:
                now = time.perf_counter()
                speed = state.window_steps / (now - window_start)
                window_start = now
                means = {k: v / state.window_steps for k, v in state.window_sums.items()}
                means["lr"] = self._learning_rate()
                events.write("train", state.step, means, epoch=epoch + 1,
                             steps_per_sec=round(speed, 3), time=round(clock.wall(), 3))
                bar.set_postfix(loss=f"{means['loss']:.4g}")
                if bar.disable:
                    log.info("step %d/%d  epoch %d  loss %.4g  %.1f steps/s", state.step,
                             self.total_steps, epoch + 1, means["loss"], speed)
                state.window_sums, state.window_steps = {}, 0
            end_of_epoch = state.step % self.steps_per_epoch == 0
            if end_of_epoch:
                bar.close()
                bar = None
            if state.step % eval_every == 0 or state.step == self.total_steps:
                clock.update(loop_start)
                loop_start = self._validate(state, events, clock)
            if state.step % checkpoint_every == 0 or end_of_epoch or stop.requested:
                clock.update(loop_start)
                self._save("last", state)
                loop_start = time.perf_counter()
            if stop.requested:
                if bar is not None:
                    bar.close()
                return self._finish(state, "interrupted", EXIT_INTERRUPTED,
                                    f"stopped by {stop.requested} at step {state.step}; "
                                    "resume with --resume")
        clock.update(loop_start)
        self._save("last", state)
        return self._finish(state, "finished", EXIT_OK, "")

    def _validate(self, state: LoopState, events: EventLog, clock: _Clock) -> float:
        """Evaluate on val, log it, keep `best`; returns the new loop-start time."""
        metrics = self.evaluate("val")
        state.last_eval = metrics
        events.write("val", state.step, metrics, time=round(clock.wall(), 3))
        log.info("step %d  val %s", state.step,
                 "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        value = metrics[self.monitor.removeprefix("val_")]
        better = (state.best_value is None
                  or (value < state.best_value if self.train_config["monitor_mode"] == "min"
                      else value > state.best_value))
        if better:
            state.best_value, state.best_step = value, state.step
            self._save("best", state)
        return time.perf_counter()

    def _learning_rate(self) -> float:
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def _save(self, name: str, state: LoopState) -> None:
        ckpt.save_checkpoint(self.run_dir.checkpoint(name), self.checkpoint_variables(),
                             {"loop": asdict(state), "checkpoint": name})
        if name == "last":
            self._write_summary(state, "running")

    def _finish(self, state: LoopState, status: str, exit_code: int, message: str) -> RunResult:
        if message:
            (log.error if status == "failed" else log.info)(message)
        self._write_summary(state, status, message)
        log.info("%s: %s at step %d/%d", self.run_dir, status, state.step, self.total_steps)
        return RunResult(status, exit_code, state.step, (self.monitor, state.best_value),
                         state.wall_seconds, message)

    def _write_summary(self, state: LoopState, status: str, message: str = "") -> None:
        steps_per_sec = state.step / state.train_seconds if state.train_seconds else None
        self.run_dir.write_summary({
            "status": status,
            "message": message,
            "task": self.config["task"],
            "config": self.source,
            "step": state.step,
            "total_steps": self.total_steps,
            "best": {"metric": self.monitor, "value": state.best_value, "step": state.best_step},
            "final": {"val": state.last_eval, "train": self._last_train_event()},
            "wall_seconds": round(state.wall_seconds, 3),
            "train_seconds": round(state.train_seconds, 3),
            "steps_per_sec": round(steps_per_sec, 3) if steps_per_sec else None,
            "versions": environment_versions(),
            "pid": os.getpid(),
            "host": _hostname(),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })

    def _last_train_event(self) -> dict[str, Any]:
        events = [e for e in read_events(self.run_dir.metrics) if e["event"] == "train"]
        return events[-1] if events else {}

    def _plot(self) -> None:
        try:
            plot_curves(read_events(self.run_dir.metrics), self.run_dir.plots,
                        title=self.run_dir.path.name)
        except Exception:  # plots are a convenience; never fail a finished run over one
            log.warning("could not draw plots:\n%s", traceback.format_exc())

    # ---- scoring a saved run -------------------------------------------------------------

    def evaluate_checkpoint(self, location: str, split: str) -> dict[str, Any]:
        """Metrics of `split` with the weights of a checkpoint folder or file."""
        checkpoint = ckpt.load_checkpoint(location)
        self.restore(checkpoint, with_optimizer=False)
        metrics = self.evaluate(split)
        return {"split": split, "checkpoint": str(checkpoint.path),
                "step": checkpoint.meta["loop"]["step"], **metrics}


class _Clock:
    """Adds elapsed time to the loop state: train time (loop only) and wall time."""

    def __init__(self, state: LoopState) -> None:
        self.state = state
        self._wall_mark = time.perf_counter()

    def wall(self) -> float:
        now = time.perf_counter()
        self.state.wall_seconds += now - self._wall_mark
        self._wall_mark = now
        return self.state.wall_seconds

    def update(self, loop_start: float) -> None:
        self.state.train_seconds += time.perf_counter() - loop_start
        self.wall()


def _hostname() -> str:
    return socket.gethostname()
