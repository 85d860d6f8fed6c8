"""The tasks blogml knows: each has a config schema (cheap to import) and a runner (Keras)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from blogml.config.schema import Section
from blogml.runners.nl2sql import schema as nl2sql_schema
from blogml.runners.optbench import schema as optbench_schema
from blogml.runners.vqvae import schema as vqvae_schema
from blogml.runners.vqvae_prior import schema as vqvae_prior_schema

if TYPE_CHECKING:
    from blogml.runners.base import BaseRunner


@dataclass(frozen=True)
class Task:
    name: str
    schema: Section
    runner_path: str  # "module:Class", imported only when a run starts

    def runner_class(self) -> type[BaseRunner]:
        module, _, attribute = self.runner_path.partition(":")
        return getattr(importlib.import_module(module), attribute)


TASKS: dict[str, Task] = {
    "optbench": Task("optbench", optbench_schema.SCHEMA,
                     "blogml.runners.optbench.runner:OptbenchRunner"),
    "vqvae": Task("vqvae", vqvae_schema.SCHEMA, "blogml.runners.vqvae.runner:VQVAERunner"),
    "vqvae_prior": Task("vqvae_prior", vqvae_prior_schema.SCHEMA,
                        "blogml.runners.vqvae_prior.runner:VQVAEPriorRunner"),
    "nl2sql": Task("nl2sql", nl2sql_schema.SCHEMA, "blogml.runners.nl2sql.runner:NL2SQLRunner"),
}
