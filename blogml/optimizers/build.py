"""`build_optimizer(config)`: a Keras optimizer from the `optimizer:` config section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from blogml.config.schema import Issues
from blogml.errors import ConfigError, ConfigIssue
from blogml.optimizers.schema import BASE_OPTIMIZERS, OPTIMIZER


def build_optimizer(config: Mapping[str, Any]) -> keras.optimizers.Optimizer:
    """Build the optimizer an `optimizer:` section describes.

    `config` may be partial (`{"name": "sgd", "momentum": 0.9}`): missing keys take their
    defaults. A bad value raises :class:`ConfigError` naming the key.
    """
    issues = Issues()
    resolved = OPTIMIZER.check(dict(config), "optimizer", issues)
    if issues:
        raise ConfigError([ConfigIssue("build_optimizer", p, m) for p, m in issues.items])
    class_name, own_args = BASE_OPTIMIZERS[resolved["name"]]
    kwargs = {key: resolved[key] for key in own_args}
    for key in ("clipnorm", "global_clipnorm", "clipvalue"):
        if resolved[key] is not None:
            kwargs[key] = resolved[key]
    optimizer_class = getattr(keras.optimizers, class_name)
    return optimizer_class(learning_rate=resolved["learning_rate"], **kwargs)
