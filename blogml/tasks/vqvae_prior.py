"""Config schema of `task: vqvae_prior`."""

from typing import Any

from blogml.config.common import sample_keys, task_schema
from blogml.config.schema import ExistingPath, Float, Int, Issues, Section, Str, join, needs


class RunPath(ExistingPath):
    """A run directory that must exist when the run starts, which may be after an earlier
    config of the same `blogml train` has made it: so it is checked with the data (see
    `blogml.runners.vqvae_prior.checks`, which knows the other configs), not here."""

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        return Str._check(self, value, path, issues)


DATA = Section({
    "vqvae_run": RunPath(doc="run directory of a trained `task: vqvae` run",
                         hint="train one first, e.g. `blogml train configs/vqvae/demo.yaml`"),
    "checkpoint": Str("best", "which of its checkpoints encodes the images",
                      choices=["best", "last"]),
}, "code grids of the vqvae run's data, encoded once and cached in this run's "
   "codes_*.h5")


@needs("hidden", "heads")
def _check_heads(model: dict[str, Any], path: str, issues: Issues) -> None:
    if model["hidden"] % model["heads"]:
        issues.add(join(path, "heads"), f"must divide model.hidden ({model['hidden']}), got "
                                        f"{model['heads']}")


MODEL = Section({
    "hidden": Int(128, "width of the transformer", min=8),
    "layers": Int(4, "causal self-attention blocks", min=1),
    "heads": Int(4, "attention heads (must divide hidden)", min=1),
    "dropout": Float(0.1, "dropout in the blocks", min=0.0, max=0.9),
}, "causal transformer over the flattened code grid (code + row + column embeddings)",
    validators=[_check_heads])

METRICS = ["loss", "bits_per_code"]

SCHEMA = task_schema(
    "vqvae_prior", data=DATA, model=MODEL, metrics=METRICS, monitor="val_bits_per_code",
    monitor_mode="min",
    extra_train={
        **sample_keys(16, 256),
        "temperature": Float(1.0, "sampling temperature of the grids in samples/", min=0.0,
                             min_exclusive=True),
    })
