"""The `optimizer:` config section (MISSION §3), checked without importing Keras.

The base optimizer's own arguments sit flat beside `name` (`{name: sgd, momentum: 0.9}`);
which ones are allowed depends on `name`, so the table below mirrors the Keras
constructors (with Keras's defaults, so `config show` records the values actually used).
The derived tricks (schedule, weight decay, Lookahead, ...) are further keys of this
same section.
"""

from __future__ import annotations

from typing import Any

from blogml.config.schema import Bool, Float, Issues, Section, Spec, Str, join, suggest


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
    "adamw": ("AdamW", {**_adam_like(), "amsgrad": Bool(False, "AMSGrad variant")}),
    "adamax": ("Adamax", _adam_like()),
    "nadam": ("Nadam", _adam_like()),
    "lamb": ("Lamb", {**_adam_like(), "epsilon": _epsilon(1e-6)}),
    "lion": ("Lion", {"beta_1": _beta(0.9), "beta_2": _beta(0.99)}),
    "rmsprop": ("RMSprop", {"rho": _beta(0.9),
                            "momentum": Float(0.0, "momentum factor", min=0.0, max=1.0),
                            "epsilon": _epsilon(), "centered": Bool(False, "centred RMSprop")}),
    "adagrad": ("Adagrad", {"initial_accumulator_value": Float(0.1, min=0.0),
                            "epsilon": _epsilon()}),
    "adadelta": ("Adadelta", {"rho": _beta(0.95), "epsilon": _epsilon()}),
}

COMMON_FIELDS: dict[str, Spec] = {
    "name": Str("adam", "base optimizer", choices=list(BASE_OPTIMIZERS)),
    "learning_rate": Float(1e-3, "base learning rate η", min=0.0, min_exclusive=True),
    "clipnorm": Float(None, "clip each gradient to this norm", min=0.0, min_exclusive=True),
    "global_clipnorm": Float(None, "clip all gradients jointly to this norm", min=0.0,
                             min_exclusive=True),
    "clipvalue": Float(None, "clip each gradient element to ±this", min=0.0, min_exclusive=True),
}


def _check_clipping(config: dict[str, Any], path: str, issues: Issues) -> None:
    if config["clipnorm"] is not None and config["global_clipnorm"] is not None:
        issues.add(join(path, "global_clipnorm"),
                   "cannot be used together with clipnorm; keep one of the two")


class OptimizerSection(Section):
    """A Section whose allowed keys depend on the chosen base optimizer."""

    def __init__(self) -> None:
        super().__init__(dict(COMMON_FIELDS), "optimizer (MISSION §3)",
                         validators=[_check_clipping])

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        name = value.get("name", "adam") if isinstance(value, dict) else "adam"
        if name not in BASE_OPTIMIZERS:
            issues.add(join(path, "name"),
                       f"unknown optimizer {name!r}; {suggest(str(name), list(BASE_OPTIMIZERS))}")
            return value
        section = Section({**COMMON_FIELDS, **BASE_OPTIMIZERS[name][1]},
                          validators=self.validators)
        return section.check(value, path, issues)


OPTIMIZER = OptimizerSection()
