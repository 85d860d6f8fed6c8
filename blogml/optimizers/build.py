"""`build_optimizer(config)`: a Keras optimizer from the `optimizer:` config section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from blogml.config.optimizer import BASE_OPTIMIZERS, CLIP_KEYS, OPTIMIZER, Tricks
from blogml.config.schema import Issues
from blogml.errors import ConfigError, ConfigIssue
from blogml.optimizers.derived import DerivedOptimizer
from blogml.optimizers.schedules import PiecewiseLinear

# Keys of the section that are blogml's tricks, not arguments of the Keras class.
_OWN_KEYS = {"weight_decay"}


def build_optimizer(config: Mapping[str, Any]) -> keras.optimizers.Optimizer:
    """Build the optimizer an `optimizer:` section describes (README: Derived optimizers).

    `config` may be partial (`{"name": "sgd", "momentum": 0.9}`): missing keys take their
    defaults. A bad value raises :class:`ConfigError` naming the key. With no trick on, the
    result is the plain Keras optimizer; otherwise a `DerivedOptimizer` wrapping it.
    """
    issues = Issues()
    resolved = OPTIMIZER.check(dict(config), "optimizer", issues)
    if issues:
        raise ConfigError([ConfigIssue("build_optimizer", p, m) for p, m in issues.items])
    class_name, own_args = BASE_OPTIMIZERS[resolved["name"]]
    kwargs = {key: resolved[key] for key in own_args if key not in _OWN_KEYS}
    clip = {key: resolved[key] for key in CLIP_KEYS if resolved[key] is not None}
    learning_rate = resolved["learning_rate"]
    if resolved["schedule"] is not None:
        learning_rate = PiecewiseLinear(learning_rate, resolved["schedule"]["piecewise_linear"])
    base = getattr(keras.optimizers, class_name)
    tricks = Tricks.from_section(resolved)
    if not tricks.any:
        return base(learning_rate=learning_rate, **kwargs, **clip)
    # Both named as the subclass that made the tricks before the wrapper was (`DerivedAdam`
    # gave "derived_adam"), so the checkpoints of earlier runs keep their variable paths.
    name = f"derived_{class_name.lower()}"
    return DerivedOptimizer(base(learning_rate=learning_rate, name=name, **kwargs), tricks,
                            name=name, **clip)
