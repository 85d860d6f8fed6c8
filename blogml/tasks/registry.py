"""The tasks blogml knows: each has a config schema (cheap to import), a check of the data
a config names (Keras-free, imported when data is checked) and a runner (Keras).

The checks and runners sit in the layer above (`blogml.runners`) and are named here by
"module:attribute" paths, imported only when they are needed: checking a config never
imports them, and they may import this module."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from blogml.config.schema import Section
from blogml.tasks import nl2sql as nl2sql_schema
from blogml.tasks import optbench as optbench_schema
from blogml.tasks import vqvae as vqvae_schema
from blogml.tasks import vqvae_prior as vqvae_prior_schema

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from blogml.config.loader import LoadedConfig
    from blogml.errors import ConfigIssue

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

    def runner_class(self) -> type:
        """The task's `BaseRunner` subclass (the layer above: imported, not named)."""
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
