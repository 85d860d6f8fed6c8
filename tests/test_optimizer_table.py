"""The base-optimizer table mirrors the Keras constructors' default arguments.

`BASE_OPTIMIZERS` copies Keras's defaults by hand so that `blogml config show` records the
values actually used; this check makes a typo, or a Keras upgrade that changes a default,
fail here with the config name, the argument and both values.
"""

from __future__ import annotations

import inspect

import keras
import pytest

from blogml.config.optimizer import BASE_OPTIMIZERS

pytestmark = [pytest.mark.backend_neutral]

# The documented exceptions: table arguments checked against another Keras class than the
# entry's own. "adamw" builds keras.optimizers.Adam, but its `weight_decay` is applied by
# blogml itself (decoupled, README: Derived optimizers), with the default of keras.optimizers.AdamW.
BORROWED = {("adamw", "weight_decay"): "AdamW"}


def _keras_defaults(class_name: str) -> dict:
    parameters = inspect.signature(getattr(keras.optimizers, class_name)).parameters
    return {name: p.default for name, p in parameters.items()}


@pytest.mark.parametrize("name", list(BASE_OPTIMIZERS))
def test_table_defaults_are_the_keras_defaults(name):
    class_name, args = BASE_OPTIMIZERS[name]
    documented = {key for (entry, key) in BORROWED if entry == name}
    assert documented <= set(args), f"{name}: documented exception {documented - set(args)} " \
                                    "is not in the table; update BORROWED"
    for key, spec in args.items():
        source = BORROWED.get((name, key), class_name)
        keras_defaults = _keras_defaults(source)
        assert key in keras_defaults, \
            f"{name}: table argument {key!r} is not an argument of keras.optimizers.{source}"
        ours, theirs = spec.default(), keras_defaults[key]
        assert ours == theirs and isinstance(ours, bool) == isinstance(theirs, bool), \
            f"{name}.{key}: table default {ours!r}, keras.optimizers.{source} default {theirs!r}"
