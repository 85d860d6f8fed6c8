"""The tasks blogml knows: each has a config schema (cheap to import), a check of the data
a config names (Keras-free, imported when data is checked) and a runner (Keras)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from blogml.config.schema import Section
from blogml.runners.nl2sql import schema as nl2sql_schema
from blogml.runners.optbench import schema as optbench_schema
from blogml.runners.vqvae import schema as vqvae_schema
from blogml.runners.vqvae_prior import schema as vqvae_prior_schema

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from blogml.config.loader import LoadedConfig
    from blogml.errors import ConfigIssue
    from blogml.runners.base import BaseRunner

    # (values, source, the run dirs earlier configs of the same command make) -> problems
    DataCheck = Callable[[dict[str, Any], str, Mapping[Path, LoadedConfig]], list[ConfigIssue]]


def _attribute(path: str) -> Any:
    """What a "module:attribute" path names, its module imported now."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Task:
    name: str
    schema: Section
    runner_path: str  # "module:Class", imported only when a run starts
    # "module:function" checking the files a config names, imported only when data is
    # checked; None for a task that makes its own data
    data_check_path: str | None = None

    def runner_class(self) -> type[BaseRunner]:
        return _attribute(self.runner_path)

    def data_check(self) -> DataCheck | None:
        return _attribute(self.data_check_path) if self.data_check_path else None


TASKS: dict[str, Task] = {
    "optbench": Task("optbench", optbench_schema.SCHEMA,
                     "blogml.runners.optbench.runner:OptbenchRunner"),
    "vqvae": Task("vqvae", vqvae_schema.SCHEMA, "blogml.runners.vqvae.runner:VQVAERunner",
                  "blogml.runners.vqvae.checks:check_data"),
    "vqvae_prior": Task("vqvae_prior", vqvae_prior_schema.SCHEMA,
                        "blogml.runners.vqvae_prior.runner:VQVAEPriorRunner",
                        "blogml.runners.vqvae_prior.checks:check_data"),
    "nl2sql": Task("nl2sql", nl2sql_schema.SCHEMA, "blogml.runners.nl2sql.runner:NL2SQLRunner",
                   "blogml.runners.nl2sql.checks:check_data"),
}
