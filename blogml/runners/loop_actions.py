"""The periodic jobs of the training loop, one small class each.

After every step the loop calls each action's `after_step`, in order; an action decides by
its own cadence whether to act, and reads or writes only its own slice of the `LoopState`
(which a checkpoint saves whole, so that a resumed run acts on the same steps). This is
Keras's callback idea kept to what exact resume allows: the loop still owns the stepping,
the stop request and how the run ends. A task adds its own jobs through
`BaseRunner.task_actions` (the image tasks draw samples).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import keras

from blogml.runners.console import progress_bar
from blogml.runners.events import EventLog

log = logging.getLogger("blogml")


@dataclass
class LoopState:
    """Everything besides variables that a checkpoint needs to continue exactly."""

    step: int = 0
    best_value: float | None = None  # ValidateAndKeepBest's, with the three below
    best_step: int | None = None
    last_eval: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0  # in the training loop, summed over resumes (RunClock)
    eval_seconds: float = 0.0  # the part of it spent validating
    # LogWindow's running sums of the current window, so a resumed run logs the same means.
    window_sums: dict[str, float] = field(default_factory=dict)
    window_steps: int = 0


class RunClock:
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


class LoopHost(Protocol):
    """What the actions use of the runner (`BaseRunner` provides it)."""

    model: keras.Model
    train_config: dict[str, Any]
    events: EventLog
    clock: RunClock
    steps_per_epoch: int
    total_steps: int
    monitor: str

    def evaluate(self, split: str) -> dict[str, float]: ...

    def evaluation_weights(self) -> contextlib.AbstractContextManager: ...

    def save(self, name: str, state: LoopState) -> None: ...


class LoopAction:
    """One periodic job: `after_step` runs after every training step."""

    def after_step(self, state: LoopState, logs: dict[str, Any], stopping: bool) -> None:
        raise NotImplementedError


def due(step: int, every: int, last: int | None = None) -> bool:
    """Every `every` steps, and at step `last` when given (the run's final step)."""
    return step % every == 0 or step == last


class EpochBars(LoopAction):
    """A progress bar per epoch: opened at the epoch's first step, closed at its end (before
    the validation and checkpoint log lines of that step)."""

    def __init__(self, steps_per_epoch: int, epochs: int) -> None:
        self.steps_per_epoch, self.epochs = steps_per_epoch, epochs
        self.bar = None

    def open(self, step: int):
        """The bar of the epoch that `step` + 1 is in, opening it if needed."""
        if self.bar is None:
            epoch, position = divmod(step, self.steps_per_epoch)
            self.bar = progress_bar(self.steps_per_epoch, position,
                                    f"epoch {epoch + 1}/{self.epochs}")
        return self.bar

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def after_step(self, state: LoopState, logs: dict[str, Any], stopping: bool) -> None:
        if state.step % self.steps_per_epoch == 0:
            self.close()


class LogWindow(LoopAction):
    """Means of the compiled metrics over the last `every` steps, written as a `train`
    event. Owns `window_sums` and `window_steps`: a resumed run logs the same means."""

    def __init__(self, runner: LoopHost, bars: EpochBars, every: int) -> None:
        self.runner, self.bars, self.every = runner, bars, every
        self._start = time.perf_counter()

    def after_step(self, state: LoopState, logs: dict[str, Any], stopping: bool) -> None:
        for name, value in logs.items():
            state.window_sums[name] = state.window_sums.get(name, 0.0) + float(value)
        state.window_steps += 1
        if due(state.step, self.every):
            now = time.perf_counter()
            self._write(state, state.window_steps / (now - self._start))
            self._start = now

    def _write(self, state: LoopState, speed: float) -> None:
        runner, bar = self.runner, self.bars.bar
        epoch = (state.step - 1) // runner.steps_per_epoch + 1
        means = {k: v / state.window_steps for k, v in state.window_sums.items()}
        means["lr"] = float(keras.ops.convert_to_numpy(runner.model.optimizer.learning_rate))
        runner.events.write("train", state.step, means, epoch=epoch,
                            steps_per_sec=round(speed, 3), time=round(runner.clock.tick(), 3))
        bar.set_postfix(loss=f"{means['loss']:.4g}")
        if bar.disable:
            log.info("step %d/%d  epoch %d  loss %.4g  %.1f steps/s", state.step,
                     runner.total_steps, epoch, means["loss"], speed)
        state.window_sums, state.window_steps = {}, 0


class ValidateAndKeepBest(LoopAction):
    """Evaluate on val every `every` steps and at the end; keep `checkpoints/best` when the
    monitored metric improved. Owns `best_value`, `best_step`, `last_eval`, `eval_seconds`."""

    def __init__(self, runner: LoopHost, every: int) -> None:
        self.runner, self.every = runner, every

    def after_step(self, state: LoopState, logs: dict[str, Any], stopping: bool) -> None:
        if due(state.step, self.every, self.runner.total_steps):
            self.validate(state)

    def validate(self, state: LoopState) -> None:
        runner, config = self.runner, self.runner.train_config
        started = runner.clock.tick()
        with runner.evaluation_weights():
            metrics = runner.evaluate("val")
            state.eval_seconds += runner.clock.tick() - started
            value = metrics[runner.monitor.removeprefix("val_")]
            better = (state.best_value is None
                      or (value < state.best_value if config["monitor_mode"] == "min"
                          else value > state.best_value))
            if better:  # `best` holds the weights that were evaluated (EMA ones, with EMA)
                state.best_value, state.best_step = value, state.step
                runner.save("best", state)
        state.last_eval = metrics
        runner.events.write("val", state.step, metrics, time=round(state.wall_seconds, 3))
        log.info("step %d  val %s", state.step,
                 "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))


class DrawSamples(LoopAction):
    """`draw(step)` every `every` steps and at the end, with the evaluation weights."""

    def __init__(self, runner: LoopHost, every: int, draw: Callable[[int], None]) -> None:
        self.runner, self.every, self.draw = runner, every, draw

    def after_step(self, state: LoopState, logs: dict[str, Any], stopping: bool) -> None:
        if due(state.step, self.every, self.runner.total_steps):
            with self.runner.evaluation_weights():
                self.draw(state.step)


class SaveLast(LoopAction):
    """`checkpoints/last` every `every` steps, at each epoch's end and when a stop is
    requested (the state a resume continues from)."""

    def __init__(self, runner: LoopHost, every: int) -> None:
        self.runner, self.every = runner, every

    def after_step(self, state: LoopState, logs: dict[str, Any], stopping: bool) -> None:
        if due(state.step, self.every) or due(state.step, self.runner.steps_per_epoch) \
                or stopping:
            self.runner.save("last", state)
