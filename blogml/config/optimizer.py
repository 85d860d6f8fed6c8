"""The `optimizer:` config section (README: Derived optimizers), checked without importing Keras.

The base optimizer's own arguments sit flat beside `name` (`{name: sgd, momentum: 0.9}`);
which ones are allowed depends on `name`, so the table below mirrors the Keras
constructors (with Keras's defaults, so `config show` records the values actually used).
The derived tricks (schedule, weight decay, Lookahead, ...) are further keys of this
same section.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from blogml.config.schema import (
    Bool,
    Float,
    Int,
    Issues,
    ListOf,
    MapOf,
    Pattern,
    Section,
    Spec,
    Str,
    TaggedUnion,
    join,
)


def _beta(default: float) -> Float:
    return Float(default, "exponential decay rate of a moment estimate", min=0.0, max=1.0)


def _epsilon(default: float = 1e-7) -> Float:
    return Float(default, "numerical-stability constant", min=0.0, min_exclusive=True)


def _adam_like() -> dict[str, Spec]:
    return {"beta_1": _beta(0.9), "beta_2": _beta(0.999), "epsilon": _epsilon()}


# Keras class name and the base optimizer's own arguments, by config name.
BASE_OPTIMIZERS: dict[str, tuple[str, dict[str, Spec]]] = {
    "sgd": ("SGD", {"momentum": Float(0.0, "momentum factor", min=0.0, max=1.0),
                    "nesterov": Bool(False, "Nesterov momentum")}),
    "adam": ("Adam", {**_adam_like(), "amsgrad": Bool(False, "AMSGrad variant")}),
    # AdamW is Adam with decoupled weight decay: its decay is the `weight_decay` key below
    # (Keras's default), applied by blogml after the step, not by the Keras class.
    "adamw": ("Adam", {**_adam_like(), "amsgrad": Bool(False, "AMSGrad variant"),
                       "weight_decay": Float(0.004, "decoupled weight decay (AdamW)", min=0.0)}),
    "adamax": ("Adamax", _adam_like()),
    "nadam": ("Nadam", _adam_like()),
    "lamb": ("Lamb", _adam_like()),
    "lion": ("Lion", {"beta_1": _beta(0.9), "beta_2": _beta(0.99)}),
    "rmsprop": ("RMSprop", {"rho": _beta(0.9),
                            "momentum": Float(0.0, "momentum factor", min=0.0, max=1.0),
                            "epsilon": _epsilon(), "centered": Bool(False, "centred RMSprop")}),
    "adagrad": ("Adagrad", {"initial_accumulator_value": Float(0.1, min=0.0),
                            "epsilon": _epsilon()}),
    "adadelta": ("Adadelta", {"rho": _beta(0.95), "epsilon": _epsilon()}),
}

# The kinds of gradient clipping, one of which an optimizer may use.
CLIP_KEYS = ("clipnorm", "global_clipnorm", "clipvalue")

COMMON_FIELDS: dict[str, Spec] = {
    "name": Str("adam", "base optimizer", choices=list(BASE_OPTIMIZERS)),
    "learning_rate": Float(1e-3, "base learning rate η", min=0.0, min_exclusive=True),
    "clipnorm": Float(None, "clip each gradient to this norm", min=0.0, min_exclusive=True),
    "global_clipnorm": Float(None, "clip all gradients jointly to this norm", min=0.0,
                             min_exclusive=True),
    "clipvalue": Float(None, "clip each gradient element to ±this", min=0.0, min_exclusive=True),
    # The derived tricks (README: Derived optimizers), applied in the order: accumulate ->
    # base step -> layer adaptation -> weight decay -> lazy mask -> lookahead -> EMA.
    "schedule": Section({
        "piecewise_linear": MapOf(
            Int(min=0), Float(min=0.0), min_length=1,
            doc="learning-rate multiplier at update counts, linear between (from 0 at t=0 "
                "unless a point at 0 is given), constant after"),
    }, "learning-rate schedule", optional=True),
    "weight_decay": Float(0.0, "decoupled weight decay: θ ← θ + Δ − η·wd·θ", min=0.0),
    "exclude_from_weight_decay": ListOf(Pattern(), [], "variables (name regex) not decayed"),
    "layer_adaptation": Bool(False, "rescale each variable's step by ‖θ‖ / ‖Δ/η‖ (LAMB's "
                                    "trust ratio, on any base)"),
    "exclude_from_layer_adaptation": ListOf(Pattern(), [], "variables (name regex) left "
                                                           "unadapted"),
    "gradient_accumulation_steps": Int(1, "average gradients over n micro-batches per update",
                                       min=1),
    "lookahead": Section({
        "k": Int(5, "updates between synchronisations", min=1),
        "alpha": Float(0.5, "slow-weight step size", min=0.0, max=1.0, min_exclusive=True),
    }, "Lookahead: every k updates φ ← φ + α(θ − φ), θ ← φ", optional=True),
    "lazy": Section({
        "include": ListOf(Pattern(), ["embeddings"], "variables (name regex) updated row-wise",
                          min_length=1),
    }, "lazy updates: rows with an all-zero gradient keep their values and slots",
        optional=True),
    "ema": Section({
        "momentum": Float(0.999, "average weights by m^(age in updates), bias-corrected",
                          min=0.0, max=1.0),
        "use_for_eval": Bool(True, "evaluate, keep `best` and predict with the (bias-corrected) "
                                   "EMA weights"),
    }, "exponential moving average of the weights", optional=True),
    "paramwise_lr": MapOf(Pattern(), Float(min=0.0), {}, "learning-rate multiplier per "
                          "variable (name regex -> multiplier; the first match applies)"),
}


def _check_combinations(config: dict[str, Any], path: str, issues: Issues) -> None:
    clipping = [key for key in CLIP_KEYS
                if config[key] is not None]
    if len(clipping) > 1:  # Keras takes one kind of clipping per optimizer
        issues.add(join(path, clipping[-1]),
                   f"cannot be used together with {' and '.join(clipping[:-1])}; keep one "
                   "kind of gradient clipping")
    if config["layer_adaptation"] and config["name"] == "lamb":
        issues.add(join(path, "layer_adaptation"),
                   "lamb already applies this trust ratio; use name: adam with "
                   "layer_adaptation: true, or drop layer_adaptation")
    if config["weight_decay"] > 0 and config["name"] == "lamb":
        # Decided in blogml/optimizers/derived.py: neither reading is what LAMB's name says.
        issues.add(join(path, "weight_decay"),
                   "lamb with weight_decay is not the LAMB paper's optimizer (its decay sits "
                   "inside the trust ratio; blogml decays after the step); use "
                   "name: adam with layer_adaptation: true and weight_decay (blogml's LAMB), or "
                   "set weight_decay: 0")
    ema = config["ema"]
    if ema is not None and ema["momentum"] >= 1.0:
        issues.add(join(path, "ema.momentum"),
                   "must be below 1 (at 1 the average never moves), got 1")


class OptimizerSection(TaggedUnion):
    """`optimizer:`, whose allowed keys depend on the chosen base optimizer (`name`)."""

    def __init__(self) -> None:
        variants = {name: Section({**COMMON_FIELDS, **args}, validators=[_check_combinations])
                    for name, (_, args) in BASE_OPTIMIZERS.items()}
        super().__init__(dict(COMMON_FIELDS), "optimizer", tag="name", variants=variants,
                         unknown="unknown optimizer {tag!r}; {suggestion}",
                         foreign="is an argument of {owners}, not of {tag}; remove it or "
                                 "change optimizer.name")


OPTIMIZER = OptimizerSection()


@dataclass(frozen=True)
class Tricks:
    """Which tricks are on, from a resolved `optimizer:` section (here, not beside the
    optimizer that applies them, so that config checks can ask without importing Keras)."""

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
    def from_section(cls, config: Mapping[str, Any]) -> Tricks:
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Tricks:
        """The inverse of `to_dict`, also after a trip through JSON (tuples become lists)."""
        values = dict(values)
        for key in ("exclude_from_weight_decay", "exclude_from_layer_adaptation",
                    "lazy_include"):
            values[key] = tuple(values.get(key, ()))
        values["paramwise_lr"] = tuple((p, float(m)) for p, m in values.get("paramwise_lr", ()))
        return cls(**values)

    @property
    def any(self) -> bool:
        return self != Tricks()
