"""The derived tricks of MISSION §3, composed on any Keras base optimizer.

`derive(keras.optimizers.Adam)` returns a subclass whose update is, per applied update:

    accumulate -> base step -> layer adaptation -> weight decay -> lazy mask -> lookahead -> EMA

The base class contributes only its step rule (`_backend_update_step`: Adam's moments,
SGD's momentum, ...) and its own slot variables; everything else is done here, once, with
`keras.ops`, so it runs on every backend, under `model.fit` or a custom train step, with
or without XLA. Keras has built-in `gradient_accumulation_steps`, `use_ema` and
`weight_decay`, but they do not meet the semantics of §3 (Keras counts micro-batches as
iterations, so Adam's bias correction and schedules drift under accumulation; its EMA is
not bias-corrected; its weight decay runs before the step, which breaks the order with
layer adaptation), so they are left off and these are used instead. All extra state
(accumulators, slow weights, averages, the micro-batch counter) lives in optimizer
variables, which the runner's checkpoints save and restore with the rest.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
from keras import ops

from blogml import replicas
from blogml.optimizers import (
    accumulation,
    control,
    ema,
    layer_adaptation,
    lazy,
    lookahead,
    weight_decay,
)

log = logging.getLogger("blogml")


@dataclass(frozen=True)
class Tricks:
    """Which tricks are on, from a resolved `optimizer:` section."""

    weight_decay: float = 0.0
    exclude_from_weight_decay: tuple[str, ...] = ()
    layer_adaptation: bool = False
    exclude_from_layer_adaptation: tuple[str, ...] = ()
    accumulation_steps: int = 1
    lookahead_k: int = 0
    lookahead_alpha: float = 0.5
    lazy_include: tuple[str, ...] = ()
    ema_momentum: float | None = None
    ema_for_eval: bool = True
    paramwise_lr: tuple[tuple[str, float], ...] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Tricks:
        look, lazy_section, average = config["lookahead"], config["lazy"], config["ema"]
        return cls(
            weight_decay=config["weight_decay"],
            exclude_from_weight_decay=tuple(config["exclude_from_weight_decay"]),
            layer_adaptation=config["layer_adaptation"],
            exclude_from_layer_adaptation=tuple(config["exclude_from_layer_adaptation"]),
            accumulation_steps=config["gradient_accumulation_steps"],
            lookahead_k=look["k"] if look else 0,
            lookahead_alpha=look["alpha"] if look else 0.5,
            lazy_include=tuple(lazy_section["include"]) if lazy_section else (),
            ema_momentum=average["momentum"] if average else None,
            ema_for_eval=average["use_for_eval"] if average else True,
            paramwise_lr=tuple(config["paramwise_lr"].items()),
        )

    @property
    def any(self) -> bool:
        return self != Tricks()


@dataclass(frozen=True)
class _VariablePlan:
    """What happens to one trainable variable after the base step."""

    lr_multiplier: float
    decay: bool
    adapt: bool
    lazy: bool

    @property
    def post_processed(self) -> bool:
        return self.lr_multiplier != 1.0 or self.decay or self.adapt or self.lazy


def _matches(patterns: Sequence[str], name: str) -> bool:
    return any(re.search(pattern, name) for pattern in patterns)


class DerivedOptimizer:
    """Mixin: put it before a Keras optimizer class (see `derive`)."""

    def __init__(self, tricks: Tricks, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tricks = tricks

    # ---- variables ----------------------------------------------------------------------

    def build(self, var_list: Sequence[keras.Variable]) -> None:
        if self.built:
            return
        # Record which slot variables the base optimizer creates for which model variable:
        # the lazy mask must leave the slots of untouched rows alone too.
        slots: dict[int, list[keras.Variable]] = {}
        create = self.add_variable_from_reference

        def recording(reference_variable, name=None, initializer="zeros"):
            slot = create(reference_variable, name=name, initializer=initializer)
            slots.setdefault(id(reference_variable), []).append(slot)
            return slot

        self.add_variable_from_reference = recording
        try:
            super().build(var_list)
        finally:
            del self.add_variable_from_reference
        self._slots = [[s for s in slots.get(id(v), []) if tuple(s.shape) == tuple(v.shape)]
                       for v in var_list]
        self._plans = [self._plan(v) for v in var_list]
        self._warn_unmatched(var_list)
        tricks = self.tricks
        self._micro_step = self._accumulators = self._slow = self._average = None
        if tricks.accumulation_steps > 1:
            self._micro_step = self.add_variable(shape=(), dtype="int", initializer="zeros",
                                                 name="micro_step")
            self._accumulators = [self.add_variable_from_reference(v, "accumulator")
                                  for v in var_list]
        if tricks.lookahead_k:
            # φ is set to θ₀ by the first update, not here: under model.fit on TensorFlow the
            # optimizer is built while the train step is traced (under XLA too), where
            # neither an assign nor an initializer that reads θ can run once.
            self._slow = [self.add_variable_from_reference(v, "slow") for v in var_list]
        if tricks.ema_momentum is not None:
            self._average = [self.add_variable_from_reference(v, "average") for v in var_list]

    def _plan(self, variable: keras.Variable) -> _VariablePlan:
        tricks, name = self.tricks, variable.path
        multiplier = next((m for pattern, m in tricks.paramwise_lr if re.search(pattern, name)),
                          1.0)
        return _VariablePlan(
            lr_multiplier=multiplier,
            decay=tricks.weight_decay > 0 and not _matches(tricks.exclude_from_weight_decay, name),
            adapt=tricks.layer_adaptation and not _matches(tricks.exclude_from_layer_adaptation,
                                                           name),
            lazy=_matches(tricks.lazy_include, name),
        )

    def _warn_unmatched(self, var_list: Sequence[keras.Variable]) -> None:
        names = [v.path for v in var_list]
        patterns = [("optimizer.lazy.include", p) for p in self.tricks.lazy_include]
        patterns += [("optimizer.paramwise_lr", p) for p, _ in self.tricks.paramwise_lr]
        for key, pattern in patterns:
            if not any(re.search(pattern, name) for name in names):
                log.warning("%s: %r matches no variable of this model (%s)", key, pattern,
                            ", ".join(names))

    # ---- the update ---------------------------------------------------------------------

    def _backend_apply_gradients(self, grads: list, trainable_variables: list) -> None:
        # Under tf.distribute each replica holds the gradient of its share of the loss: sum
        # them first, so that every trick (clipping, accumulation, the lazy mask, ...) sees
        # the global-batch gradient and every replica makes the same single-device update.
        grads = replicas.all_sum(grads)
        steps = self.tricks.accumulation_steps
        if steps == 1:
            self._update(grads, trainable_variables)
            return
        indices = [self._get_variable_index(v) for v in trainable_variables]
        update_now = accumulation.is_update_step(self._micro_step, steps)
        sums = [self._accumulators[i].value + ops.convert_to_tensor(g)
                for i, g in zip(indices, grads)]
        control.run_if(update_now,
                       lambda: self._update([s / steps for s in sums], trainable_variables),
                       written=self._state_for(indices, trainable_variables),
                       visible=list(self.variables) + list(trainable_variables))
        for i, total in zip(indices, sums):
            self._accumulators[i].assign(ops.where(update_now, ops.zeros_like(total), total))
        self._micro_step.assign((self._micro_step + 1) % steps)
        # Keras's apply() adds 1 to `iterations` after this method; a micro-batch that is not
        # an update takes it back, so `iterations` counts applied updates.
        self._iterations.assign_sub(1 - ops.cast(update_now, self._iterations.dtype))

    def _update(self, grads: list, trainable_variables: list) -> None:
        """One applied update: base step, then the tricks in §3's order."""
        tricks = self.tricks
        indices = [self._get_variable_index(v) for v in trainable_variables]
        plans = [self._plans[i] for i in indices]
        learning_rate = self.learning_rate  # the schedule at t = updates applied so far
        grads = self._clip_gradients(grads)
        grads = [ops.convert_to_tensor(g) if plan.lazy else g for g, plan in zip(grads, plans)]
        previous = {k: ops.copy(v.value) for k, (v, plan) in
                    enumerate(zip(trainable_variables, plans)) if plan.post_processed}
        previous_slots = {k: [ops.copy(s.value) for s in self._slots[indices[k]]]
                          for k, plan in enumerate(plans) if plan.lazy}
        if tricks.lookahead_k:
            slows = [self._slow[i] for i in indices]
            # φ starts at θ₀. Set by the first update rather than at build: under model.fit
            # on TensorFlow the optimizer is built while the step is traced, where an
            # assign (or an initializer reading θ) would not run exactly once.
            control.run_if(ops.equal(self._iterations, 0),
                           lambda: [s.assign(v.value) for s, v in zip(slows,
                                                                      trainable_variables)],
                           written=slows, visible=trainable_variables)

        self._base_step(grads, trainable_variables, learning_rate)

        for k, old in previous.items():
            self._post_process(trainable_variables[k], plans[k], old, grads[k],
                               self._slots[indices[k]], previous_slots.get(k), learning_rate)
        if tricks.lookahead_k:
            control.run_if(ops.equal((self._iterations + 1) % tricks.lookahead_k, 0),
                           lambda: [lookahead.synchronise(v, s, tricks.lookahead_alpha)
                                    for v, s in zip(trainable_variables, slows)],
                           written=list(trainable_variables) + slows, visible=[])
        if tricks.ema_momentum is not None:
            for i, variable in zip(indices, trainable_variables):
                self._average[i].assign(ema.update(self._average[i].value, variable.value,
                                                   tricks.ema_momentum))

    def _base_step(self, grads: list, trainable_variables: list, learning_rate) -> None:
        """The base optimizer's step rule. In a tf.distribute replica step the gradients are
        already summed over the replicas, so each replica applies them to its own copy of the
        variables; Keras's TF `_backend_update_step` would sum them once more."""
        if replicas.count() == 1:
            self._backend_update_step(grads, trainable_variables, learning_rate)
            return
        for grad, variable in zip(grads, trainable_variables):
            self.update_step(grad, variable, learning_rate)

    def _state_for(self, indices: list[int], trainable_variables: list) -> list[keras.Variable]:
        """Every variable an update may change: weights, base slots, slow weights, averages."""
        held = list(trainable_variables)
        for i in indices:
            held += self._slots[i]
            if self._slow is not None:
                held.append(self._slow[i])
            if self._average is not None:
                held.append(self._average[i])
        return held

    def _post_process(self, variable, plan: _VariablePlan, old, gradient, slots, old_slots,
                      learning_rate) -> None:
        """Paramwise lr, layer adaptation, weight decay and the lazy mask, in §3's order."""
        learning_rate = ops.cast(learning_rate, variable.dtype) * plan.lr_multiplier
        if plan.lr_multiplier == 1.0 and not plan.adapt:
            theta = variable.value  # θ + Δ as the base step left it: no need to rebuild it
        else:
            delta = variable.value - old
            if plan.lr_multiplier != 1.0:
                delta = delta * plan.lr_multiplier
            if plan.adapt:
                delta = delta * layer_adaptation.trust_ratio(old, delta, learning_rate)
            theta = old + delta
        if plan.decay:
            theta = weight_decay.decay(theta, old, learning_rate, self.tricks.weight_decay)
        if plan.lazy:
            touched = lazy.touched_rows(gradient)
            theta = lazy.keep_untouched(theta, old, touched)
            for slot, old_slot in zip(slots, old_slots):
                slot.assign(lazy.keep_untouched(slot.value, old_slot, touched))
        variable.assign(theta)

    # ---- weights for evaluation ---------------------------------------------------------------

    @property
    def evaluates_average(self) -> bool:
        return self.tricks.ema_momentum is not None and self.tricks.ema_for_eval

    def average_weights(self) -> list | None:
        """The bias-corrected EMA of each trainable variable; None before the first update."""
        if self._average is None or int(ops.convert_to_numpy(self.iterations)) == 0:
            return None
        return [ema.corrected(a.value, self.tricks.ema_momentum, self.iterations)
                for a in self._average]

    @contextlib.contextmanager
    def evaluation_weights(self) -> Iterator[None]:
        """Within this context the model holds the EMA weights (if EMA is used for eval)."""
        averages = self.average_weights() if self.evaluates_average else None
        if averages is None:
            yield
            return
        raw = [ops.copy(v.value) for v in self._trainable_variables]
        for variable, average in zip(self._trainable_variables, averages):
            variable.assign(average)
        try:
            yield
        finally:
            for variable, value in zip(self._trainable_variables, raw):
                variable.assign(value)


_DERIVED: dict[type, type] = {}


def derive(base: type[keras.optimizers.Optimizer]) -> type:
    """The class `base` + tricks; built once per base class."""
    if base not in _DERIVED:
        _DERIVED[base] = type(f"Derived{base.__name__}", (DerivedOptimizer, base), {})
    return _DERIVED[base]
