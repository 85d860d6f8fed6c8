"""The derived optimizer tricks (README: Derived optimizers), as a wrapper of any Keras optimizer.

`DerivedOptimizer(inner, tricks)` makes, per applied update,

    accumulate -> clip -> base step -> paramwise lr -> layer adaptation -> weight decay
               -> lazy mask -> lookahead -> EMA

It wraps the inner optimizer the way Keras's `LossScaleOptimizer` does, through its public
API: the inner optimizer only sees the mean gradient of each applied update (its `apply`;
its `update_step` rule in a tf.distribute replica step, where the gradients are already
summed), so its own `iterations`, schedule and bias correction count updates. The wrapper
owns the accumulators, slow weights and averages as its own variables; `variables` lists
the inner optimizer's first, then these, and checkpoints save and restore both.

For a variable the tricks post-process, the inner optimizer's writes to it are captured
instead of made (`keras_adapter.captured_writes`): they are Δ, exactly as the base step
computed it, the variable still holds θ (which the base may read, as LAMB's trust ratio
does), and θ is rounded once, when θ + Δ' is written. Keras's torch optimizers write the
weights with torch's foreach kernels, past the methods a capture sees: there the inner
optimizer steps a zeroed buffer of the same path instead, which then holds Δ. After the
base step the reductions (trust ratios) run first, then the elementwise writes of all
variables together through `kernels.fused`, which on TensorFlow compiles those over large
weights into one XLA kernel.

Why not Keras's own `gradient_accumulation_steps`, `use_ema` and `weight_decay`: its
learning-rate schedule is called with the micro-batch count; its EMA steps on every
micro-batch, starts from θ₁ (which keeps weight m^(u−1)) and is not bias-corrected;
`exclude_from_weight_decay(var_names=...)` matches a variable's name (`gamma`), not its
path (`norm/gamma`); its decay runs before the step, against the order above with layer
adaptation; and under JAX its accumulation computes the full update on every micro-batch.
(Its `iterations` does count updates, and its accumulation agrees with this one to 2e-15.)

Two combinations are decided here, not by the posts:
- `lazy` + `layer_adaptation`: the trust ratio is taken over the rows the batch touched,
  ‖θ_touched‖ / ‖Δ_touched/η‖, so the rows that move, move by η relative to their own norm
  (over the whole table, momentum moves of untouched rows, which the mask then discards,
  would shrink the step of the touched ones).
- `name: lamb` with `weight_decay`: refused by the config check. Keras's LAMB has no decay
  inside its trust ratio, and the decoupled decay after the step is not the LAMB paper's
  (26 % apart after a few steps); `name: adam` + `layer_adaptation` + `weight_decay` is
  the form of the posts.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
from keras import ops

from blogml import keras_adapter, replicas
from blogml.config.optimizer import Tricks
from blogml.optimizers import (
    accumulation,
    clipping,
    control,
    ema,
    kernels,
    layer_adaptation,
    lazy,
    lookahead,
    weight_decay,
)

log = logging.getLogger("blogml")


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


@keras.saving.register_keras_serializable(package="blogml")
class DerivedOptimizer(keras.optimizers.Optimizer):
    """`inner_optimizer` with the derived tricks around its step (module docstring).

    Args:
        inner_optimizer: the base optimizer (Adam, SGD, ...), with no clipping, weight
            decay, EMA or accumulation of its own.
        tricks: a `Tricks`, or its `to_dict()`.
        clipnorm, global_clipnorm, clipvalue: Keras's clipping, applied once per update
            to the mean gradient of its micro-batches.
    """

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer,
                 tricks: Tricks | Mapping[str, Any], clipnorm: float | None = None,
                 global_clipnorm: float | None = None, clipvalue: float | None = None,
                 name: str | None = None) -> None:
        super().__init__(learning_rate=0.0, clipnorm=clipnorm, global_clipnorm=global_clipnorm,
                         clipvalue=clipvalue, name=name or inner_optimizer.name)
        self.inner_optimizer = inner_optimizer
        self.tricks = tricks if isinstance(tricks, Tricks) else Tricks.from_dict(tricks)
        self._trick_variables: list[keras.Variable] = []  # made by `build`

    # ---- what the wrapper passes through ------------------------------------------------

    @property
    def iterations(self):
        """Applied updates (micro-batches of an accumulation cycle count once)."""
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate) -> None:
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def variables(self) -> list[keras.Variable]:
        """The inner optimizer's variables (its step counter and slots), then the tricks'."""
        return self.inner_optimizer.variables + self._trick_variables

    # ---- variables ----------------------------------------------------------------------

    def build(self, var_list: Sequence[keras.Variable]) -> None:
        if self.built:
            return
        var_list = list(var_list)
        super().build(var_list)  # records var_list: stateless_apply calls apply(grads) alone
        self._model_variables = var_list
        self._position = {id(v): i for i, v in enumerate(var_list)}
        self._plans = [self._plan(v) for v in var_list]
        self._warn_unmatched(var_list)
        buffered = not keras_adapter.writes_through_assign_methods(self.inner_optimizer)
        self._delta_buffers = [_delta_buffer(v) if plan.post_processed and buffered else None
                               for v, plan in zip(var_list, self._plans)]
        # What the inner optimizer steps: each variable, or its buffer where it has one.
        self._stepped = [v if buffer is None else buffer
                         for v, buffer in zip(var_list, self._delta_buffers)]
        self.inner_optimizer.build(self._stepped)
        lazy_slots = keras_adapter.slots_by_variable(self.inner_optimizer, self._stepped) \
            if any(plan.lazy for plan in self._plans) else [[] for _ in var_list]
        self._lazy_slots = [slots if plan.lazy else [] for slots, plan in
                            zip(lazy_slots, self._plans)]
        tricks = self.tricks
        owned: list[keras.Variable] = []
        self._micro_step = self._accumulators = self._slow = self._average = None
        if tricks.accumulation_steps > 1:
            self._micro_step = self.add_variable(shape=(), dtype="int", initializer="zeros",
                                                 name="micro_step")
            self._accumulators = [self.add_variable_from_reference(v, "accumulator")
                                  for v in var_list]
            owned += [self._micro_step, *self._accumulators]
        # φ starts at θ₀, the weights as the optimizer is built (build it after loading
        # pretrained weights: model.fit and blogml's runners do), also where the build is
        # inside the trace of the first step: then no update has to check for the first.
        if tricks.lookahead_k:
            self._slow = [self.add_variable_from_reference(v, "slow") for v in var_list]
            with keras_adapter.outside_the_traced_step():
                for slow, variable in zip(self._slow, var_list):
                    slow.assign(ops.copy(variable.value))  # not a shared buffer (JAX)
            owned += self._slow
        if tricks.ema_momentum is not None:
            # The bias-corrected average itself (see `ema`), hence not Keras's "average".
            self._average = [self.add_variable_from_reference(v, "ema") for v in var_list]
            owned += self._average
        self._trick_variables = owned

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

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence | None = None) -> None:
        """One micro-batch: accumulate, and on the last of a cycle (every call without
        accumulation) make the update. Variables whose gradient is None are left alone."""
        if trainable_variables is None:
            trainable_variables = self._model_variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            self.build(trainable_variables)
        pairs = [(g, v) for g, v in zip(grads, trainable_variables) if g is not None]
        if not pairs:
            return
        grads, variables = (list(side) for side in zip(*pairs))
        if self.loss_scale_factor is not None:
            grads = [g / self.loss_scale_factor for g in grads]
        # Under tf.distribute each replica holds the gradient of its share of the loss: sum
        # them first, so that every trick (clipping, accumulation, the lazy mask, ...) sees
        # the global-batch gradient and every replica makes the same single-device update.
        grads = replicas.all_sum(grads)
        steps = self.tricks.accumulation_steps
        if steps == 1:
            self._update(grads, variables)
            self._count_replica_update(1)
            return
        indices = [self._position[id(v)] for v in variables]
        update_now = accumulation.is_update_step(self._micro_step, steps)
        sums = [self._accumulators[i].value + ops.convert_to_tensor(g)
                for i, g in zip(indices, grads)]
        control.run_if(update_now,
                       lambda: self._update([s / steps for s in sums], variables),
                       written=self._state_for(indices, variables),
                       visible=self.variables + variables)
        for i, total in zip(indices, sums):
            self._accumulators[i].assign(ops.where(update_now, ops.zeros_like(total), total))
        self._micro_step.assign((self._micro_step + 1) % steps)
        self._count_replica_update(update_now)

    def _count_replica_update(self, updated) -> None:
        """Count the update of a tf.distribute replica step (see `_base_step`); outside a
        conditional, as the count is synchronised between replicas (a merge_call)."""
        if replicas.count() > 1:
            counter = self.inner_optimizer.iterations
            counter.assign_add(ops.cast(updated, counter.dtype))

    def _update(self, grads: list, variables: list) -> None:
        """One applied update: base step, then the tricks in the order above."""
        tricks = self.tricks
        indices = [self._position[id(v)] for v in variables]
        plans = [self._plans[i] for i in indices]
        learning_rate = self.inner_optimizer.learning_rate  # η at t = updates so far
        updates = self.iterations + 1  # after this one
        rates = _Rates(learning_rate, tricks.weight_decay, tricks.ema_momentum, updates)
        grads = clipping.clip(grads, self.clipnorm, self.global_clipnorm, self.clipvalue)
        grads = [ops.convert_to_tensor(g) if plan.lazy else g for g, plan in zip(grads, plans)]
        touched = {k: lazy.touched_rows(grads[k]) for k, plan in enumerate(plans) if plan.lazy}
        old_slots = {k: [ops.copy(s.value) for s in self._lazy_slots[indices[k]]]
                     for k in touched}
        buffers = [self._delta_buffers[i] for i in indices]  # zero: made so, and after use
        stepped = [self._stepped[i] for i in indices]
        captured = [k for k, plan in enumerate(plans)
                    if plan.post_processed and buffers[k] is None]
        with keras_adapter.captured_writes(self.inner_optimizer,
                                           [variables[k] for k in captured]) as steps:
            self._base_step(grads, stepped, learning_rate)
        deltas = dict(zip(captured, steps))

        # (k, θ, u, c, η) of each post-processed variable: the base step wrote u (Δ = ±u,
        # the sign kept apart so that negating it costs no pass over the weight), and
        # m·Δ = c·u. Layer adaptation folds its ratio into c.
        processed = []
        for k, plan in enumerate(plans):
            if not plan.post_processed:
                continue
            variable = variables[k]
            written, sign = deltas[k] if k in deltas else (kernels.read(buffers[k]), 1.0)
            processed.append((k, kernels.read(variable), written, sign * plan.lr_multiplier,
                              rates.learning_rate(variable.dtype, 1.0)))
        adapted = _trust_ratios([item for item in processed if plans[item[0]].adapt],
                                variables, touched)
        writes = []
        for k, theta, written, coefficient, _ in processed:
            variable, plan = variables[k], plans[k]
            elements = math.prod(variable.shape)
            shrink = rates.decay(variable.dtype, plan.lr_multiplier) if plan.decay else None
            writes.append((self._post_process(variable, theta, written,
                                              adapted.get(k, coefficient), shrink,
                                              touched.get(k), buffers[k]), elements))
            writes += [(lambda slot=slot, old=old, rows=touched[k]:
                        slot.assign(lazy.keep_untouched(slot.value, old, rows)), elements)
                       for slot, old in zip(self._lazy_slots[indices[k]], old_slots.get(k, []))]
        kernels.fused(writes)
        if tricks.lookahead_k:
            slows = [self._slow[i] for i in indices]
            control.run_if(ops.equal(updates % tricks.lookahead_k, 0),
                           lambda: [lookahead.synchronise(v, s, tricks.lookahead_alpha)
                                    for v, s in zip(variables, slows)],
                           written=variables + slows, visible=[])
        if tricks.ema_momentum is not None:
            kernels.fused([
                (lambda average=self._average[i], variable=variable,
                 w=rates.ema_weight(variable.dtype):
                 self.assign_add(average, ema.increment(average.value, variable.value, w)),
                 math.prod(variable.shape))
                for i, variable in zip(indices, variables)])

    def _base_step(self, grads: list, stepped: list, learning_rate) -> None:
        """The inner optimizer's step on `stepped` (variables or Δ buffers). In a
        tf.distribute replica step the gradients are already summed over the replicas, so
        each replica applies the step rule to its own copy (the inner `apply` would sum
        them once more), and `apply` counts the update afterwards."""
        inner = self.inner_optimizer
        if replicas.count() == 1:
            inner.apply(grads, stepped)
            return
        for grad, target in zip(grads, stepped):
            inner.update_step(grad, target, learning_rate)

    def _post_process(self, variable, theta, written, coefficient, shrink, touched,
                      buffer) -> Callable[[], None]:
        """The write θ ← θ + c·u − s·θ, rows the batch did not touch kept (lazy): u is what
        the base step wrote, c = ±r·m (its sign, layer adaptation r, paramwise lr m; a
        float where there is no r), s = m·η·wd or None (weight decay), θ rounded once.

        Elementwise only, to run with the other variables' in one `kernels.fused` call.
        The variable still holds θ; u came from the inner optimizer's captured writes or,
        where Keras's torch optimizers write past them, from `buffer` (zeroed here after use).
        A negative float c is subtracted as θ − (|c|·u + s·θ): the same numbers, one
        negation fewer.
        """
        def write() -> None:
            subtract = isinstance(coefficient, float) and coefficient < 0
            factor = -coefficient if subtract else coefficient
            moved = written if isinstance(factor, float) and factor == 1.0 else written * factor
            if shrink is not None:
                moved = weight_decay.decayed(moved, theta, shrink, subtracted=subtract)
            if touched is not None:
                new = theta - moved if subtract else theta + moved
                variable.assign(lazy.keep_untouched(new, theta, touched))
            elif subtract:
                self.assign_sub(variable, moved)
            else:
                self.assign_add(variable, moved)
            if variable.constraint is not None:
                variable.assign(variable.constraint(variable))
            if buffer is not None:
                buffer.assign(ops.zeros(buffer.shape, buffer.dtype))

        return write

    def _state_for(self, indices: list[int], variables: list) -> list[keras.Variable]:
        """Every variable an update may change: weights, the inner optimizer's variables,
        slow weights, averages."""
        held = list(variables) + self.inner_optimizer.variables
        for i in indices:
            if self._slow is not None:
                held.append(self._slow[i])
            if self._average is not None:
                held.append(self._average[i])
        return held

    # ---- weights for evaluation ---------------------------------------------------------

    @property
    def evaluates_average(self) -> bool:
        return self.tricks.ema_momentum is not None and self.tricks.ema_for_eval

    def average_weights(self) -> list | None:
        """The bias-corrected EMA of each trainable variable (copies: on JAX a weight given
        the average's own buffer would share it, and a donating step would delete it);
        None before the first update."""
        if self._average is None or int(ops.convert_to_numpy(self.iterations)) == 0:
            return None
        return [ops.copy(average.value) for average in self._average]

    @contextlib.contextmanager
    def evaluation_weights(self) -> Iterator[None]:
        """Within this context the model holds the EMA weights (if EMA is used for eval)."""
        averages = self.average_weights() if self.evaluates_average else None
        if averages is None:
            yield
            return
        raw = [ops.copy(v.value) for v in self._model_variables]
        for variable, average in zip(self._model_variables, averages):
            variable.assign(average)
        try:
            yield
        finally:
            for variable, value in zip(self._model_variables, raw):
                variable.assign(value)

    # ---- serialisation ------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name,
                "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
                "tricks": self.tricks.to_dict(), "clipnorm": self.clipnorm,
                "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects=None) -> DerivedOptimizer:
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(config.pop("inner_optimizer"),
                                                      custom_objects=custom_objects)
        return cls(inner, **config)


class _Rates:
    """The scalars of one update (η·m, η·m·wd, the EMA's w_u), each computed once per dtype
    and multiplier: in a TensorFlow graph every scalar op counts, and a model shares a
    handful of them."""

    def __init__(self, learning_rate, weight_decay_rate: float, ema_momentum: float | None,
                 updates) -> None:
        self.base, self.weight_decay = learning_rate, weight_decay_rate
        self.ema_momentum, self.updates = ema_momentum, updates
        self._made: dict[tuple, Any] = {}

    def _once(self, key: tuple, make) -> Any:
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def learning_rate(self, dtype, multiplier: float):
        def make():
            eta = ops.cast(self.base, dtype)
            return eta if multiplier == 1.0 else eta * multiplier
        return self._once(("eta", dtype, multiplier), make)

    def decay(self, dtype, multiplier: float):
        return self._once(("decay", dtype, multiplier),
                          lambda: self.learning_rate(dtype, multiplier) * self.weight_decay)

    def ema_weight(self, dtype):
        return self._once(("ema", dtype),
                          lambda: ema.weight(self.ema_momentum, self.updates, dtype))


def _trust_ratios(adapted: list[tuple], variables: list, touched: dict) -> dict[int, Any]:
    """c·r of each `(k, θ, u, c, η)` in `adapted`, by k (r: the trust ratio of the step
    c·u; its norm is c's multiple of ‖u‖, which the ratio cancels): one stacked computation
    per dtype (`layer_adaptation.trust_ratios`)."""
    ratios: dict[int, Any] = {}
    for dtype in dict.fromkeys(variables[k].dtype for k, *_ in adapted):
        group = [item for item in adapted if variables[item[0]].dtype == dtype]
        keys, thetas, written, coefficients, etas = zip(*group)
        ratios |= zip(keys, layer_adaptation.trust_ratios(
            thetas, written, etas, rows=[touched.get(k) for k in keys], scales=coefficients))
    return ratios


def _delta_buffer(variable: keras.Variable) -> keras.Variable:
    """A zero variable with `variable`'s path, shape and dtype for the inner optimizer to
    step: its slots are named after the path, as if it stepped `variable` itself."""
    parent, _, leaf = variable.path.rpartition("/")
    grandparent, _, scope = parent.rpartition("/")
    make = lambda: keras.Variable(initializer="zeros", shape=variable.shape,  # noqa: E731
                                  dtype=variable.dtype, trainable=False, name=leaf)
    if not parent:
        return make()
    with keras.name_scope(scope, override_parent=grandparent):
        return make()
