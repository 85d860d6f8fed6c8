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
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
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
from blogml.runners import checkpoint as ckpt
from blogml.runners import precision, strategies
from blogml.runners.console import progress_bar
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
    wall_seconds: float = 0.0  # in the training loop, summed over resumes
    eval_seconds: float = 0.0  # the part of it spent validating
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

    def data_report(self) -> dict[str, Any]:
        """What summary.json should say about the data (e.g. how much of it was usable)."""
        return {}

    def draw_samples(self, step: int) -> None:
        """Write this step's samples/ grids; tasks with `train.sample_every` override it."""
        raise NotImplementedError

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
        swap = getattr(precision.base_optimizer(self.model.optimizer), "evaluation_weights",
                       None)
        return swap() if swap is not None else contextlib.nullcontext()

    # ---- evaluation -------------------------------------------------------------------

    def evaluate(self, split: str) -> dict[str, float]:
        """Mean of each compiled metric over every example of `split`."""
        totals: dict[str, float] = {}
        count = 0
        for batch in self.eval_batches(split):
            logs = self.distribution.test_on_batch(self.model, batch)
            size = len(batch[0])
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
        self._events = EventLog(self.run_dir, resume_step=state.step if resume else None)
        self._clock = _RunClock(state)
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
                self._events.close()
            except OSError as error:
                log.error("could not finish the event files: %s", describe_os_error(error))

    def _loop(self, state: LoopState, stop: StopSignal) -> RunResult:
        config = self.train_config
        checkpoint_every = config["checkpoint_every"] or self.steps_per_epoch
        batches = self.train_batches(state.step)
        window_start = time.perf_counter()
        bar = None
        while state.step < self.total_steps:
            epoch, position = divmod(state.step, self.steps_per_epoch)
            if bar is None:
                bar = progress_bar(self.steps_per_epoch, position,
                                   f"epoch {epoch + 1}/{config['epochs']}")
            logs = self.distribution.train_on_batch(self.model, next(batches))
            state.step += 1
            bar.update(1)
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                bar.close()
                return self._finish(state, "failed", EXIT_FAILED,
                                    f"loss is {loss} at step {state.step}; stopped, the last "
                                    "good checkpoint is kept")
            for name, value in logs.items():
                state.window_sums[name] = state.window_sums.get(name, 0.0) + float(value)
            state.window_steps += 1
            if state.step % config["log_every"] == 0:
                now = time.perf_counter()
                self._log_train(state, epoch, state.window_steps / (now - window_start), bar)
                window_start = now
            end_of_epoch = state.step % self.steps_per_epoch == 0
            if end_of_epoch:
                bar.close()
                bar = None
            if state.step % self.eval_every == 0 or state.step == self.total_steps:
                self._validate(state)
            self._sample_if_due(state.step)
            if state.step % checkpoint_every == 0 or end_of_epoch or stop.requested:
                self._save("last", state)
            if stop.requested:
                if bar is not None:
                    bar.close()
                return self._finish(state, "interrupted", EXIT_INTERRUPTED,
                                    f"stopped by {stop.requested} at step {state.step}; "
                                    "resume with --resume")
        self._save("last", state)
        return self._finish(state, "finished", EXIT_OK, "")

    def _sample_if_due(self, step: int) -> None:
        """Every `train.sample_every` steps (default: with each validation) and at the end,
        with the evaluation weights, for tasks whose config has sample keys."""
        if "sample_every" not in self.train_config:
            return
        every = self.train_config["sample_every"] or self.eval_every
        if step % every == 0 or step == self.total_steps:
            with self.evaluation_weights():
                self.draw_samples(step)

    def _log_train(self, state: LoopState, epoch: int, speed: float, bar: Any) -> None:
        """Write the means of the logging window, then start a new window."""
        means = {k: v / state.window_steps for k, v in state.window_sums.items()}
        means["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self._events.write("train", state.step, means, epoch=epoch + 1,
                           steps_per_sec=round(speed, 3), time=round(self._clock.tick(), 3))
        bar.set_postfix(loss=f"{means['loss']:.4g}")
        if bar.disable:
            log.info("step %d/%d  epoch %d  loss %.4g  %.1f steps/s", state.step,
                     self.total_steps, epoch + 1, means["loss"], speed)
        state.window_sums, state.window_steps = {}, 0

    def _validate(self, state: LoopState) -> None:
        """Evaluate on val, log it, and keep `best` when the monitored metric improved."""
        started = self._clock.tick()
        with self.evaluation_weights():
            metrics = self.evaluate("val")
            state.eval_seconds += self._clock.tick() - started
            value = metrics[self.monitor.removeprefix("val_")]
            better = (state.best_value is None
                      or (value < state.best_value if self.train_config["monitor_mode"] == "min"
                          else value > state.best_value))
            if better:  # `best` holds the weights that were evaluated (EMA ones, with EMA)
                state.best_value, state.best_step = value, state.step
                self._save("best", state)
        state.last_eval = metrics
        self._events.write("val", state.step, metrics, time=round(state.wall_seconds, 3))
        log.info("step %d  val %s", state.step,
                 "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))

    def _save(self, name: str, state: LoopState) -> None:
        self._clock.tick()
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
        self._clock.tick()
        train_seconds = state.wall_seconds - state.eval_seconds
        self.run_dir.write_summary({
            "status": status,
            "message": message,
            "task": self.config["task"],
            "config": self.source,
            "step": state.step,
            "total_steps": self.total_steps,
            "best": {"metric": self.monitor, "value": state.best_value, "step": state.best_step},
            "final": {"val": state.last_eval, "train": self._events.last.get("train", {})},
            **({"data": report} if (report := self.data_report()) else {}),
            "precision": precision.report(self.model),
            "distribution": {"strategy": self.config["distribution"]["strategy"],
                             "replicas": self.distribution.replicas},
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

class _RunClock:
    """Accumulates the run's wall time into its loop state, across resumes."""

    def __init__(self, state: LoopState) -> None:
        self.state = state
        self._mark = time.perf_counter()

    def tick(self) -> float:
        """Add the time since the last tick; return the run's total wall seconds."""
        now = time.perf_counter()
        self.state.wall_seconds += now - self._mark
        self._mark = now
        return self.state.wall_seconds
