"""Optimizers from config: any Keras base optimizer by name (README: Derived optimizers).

`build_optimizer` imports Keras, so it is loaded on first use: importing the config
schema from here must stay cheap for `blogml config check`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_optimizer"]


def __getattr__(name: str) -> Any:
    if name == "build_optimizer":
        from blogml.optimizers.build import build_optimizer

        return build_optimizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
