"""The config keys every task shares (README: Keys every task shares): seed, run_dir,
backend, train, optimizer, distribution, tracking."""

from __future__ import annotations

import os
import re
import string
from typing import Any

from blogml.config.distribution import DISTRIBUTION, check_distribution
from blogml.config.optimizer import OPTIMIZER
from blogml.config.schema import Bool, Choice, Int, Issues, Section, Spec, Str, suggest

BACKENDS = ["tensorflow", "jax", "torch"]
RUN_DIR_FIELDS = ["task", "time", "config", "seed", "sweep"]


def _default_backend() -> str:
    """KERAS_BACKEND from the environment when set, so `KERAS_BACKEND=jax blogml train` works."""
    return os.environ.get("KERAS_BACKEND", "tensorflow")


class Template(Str):
    """A path template with `{placeholder}` fields from a fixed set."""

    def __init__(self, default: str, doc: str, fields: list[str]) -> None:
        super().__init__(default, doc)
        self.fields = fields

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        value = super()._check(value, path, issues)
        if not isinstance(value, str):
            return value
        try:
            used = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
        except ValueError as error:
            issues.add(path, f"is not a valid template ({error}); write braces as {{{{ }}}}")
            return value
        for field in used:
            if field not in self.fields:
                issues.add(path, f"unknown placeholder {{{field}}}; {suggest(field, self.fields)}")
        return value


class NonEmptyStr(Str):
    """A string with at least one non-blank character (a name)."""

    def expected(self) -> str:
        return "a non-empty string"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        value = super()._check(value, path, issues)
        if isinstance(value, str) and not value.strip():
            issues.add(path, "must not be empty; write a name, e.g. study")
        return value


# The URI schemes of MLflow tracking stores (a database URL may name its driver: a `+`).
TRACKING_SCHEMES = ["sqlite", "file", "http", "https", "postgresql", "mysql", "mssql",
                    "databricks"]
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9.+-]+):")


class TrackingUri(Str):
    """An MLflow tracking store: a `scheme:` URI of a known kind, or a plain folder path.

    Checked here so that a typo (`sqllite:`, `sqlite://` with two slashes) is an error
    before training instead of a warning after it."""

    def expected(self) -> str:
        return "an MLflow tracking URI (sqlite:///FILE.db, file:FOLDER, http(s)://...) or a folder"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        value = super()._check(value, path, issues)
        if not isinstance(value, str):
            return value
        if not value.strip():
            issues.add(path, "must not be empty; e.g. sqlite:///runs/mlflow.db")
            return value
        match = _SCHEME.match(value)
        if match is None:
            return value  # a folder path: MLflow's file store
        scheme = match.group(1).split("+")[0].lower()
        if scheme not in TRACKING_SCHEMES:
            issues.add(path, f"unknown scheme {scheme + ':'!r}; "
                             f"{suggest(scheme, TRACKING_SCHEMES)} (e.g. sqlite:///runs/mlflow.db)")
        elif scheme == "sqlite" and (not value.startswith("sqlite:///")
                                     or not value[len("sqlite:///"):].strip()):
            issues.add(path, "a SQLite store is sqlite:/// and the file's path: "
                             "sqlite:///runs/mlflow.db (relative to the working directory) or "
                             "sqlite:////abs/path/mlflow.db")
        return value


TRACKING = Section({
    "tensorboard_hparams": Bool(
        False, "at the end of a run, write its hyperparameters (the keys the config sets, "
               "plus task and seed) and final/best metrics to tensorboard/hparams/, for "
               "TensorBoard's HParams tab"),
    "mlflow": Section({
        "uri": TrackingUri(doc="tracking store: sqlite:///runs/mlflow.db (a relative path is "
                               "relative to the working directory), a folder or file: URI, "
                               "or a tracking server's http(s):// address"),
        "experiment": NonEmptyStr("blogml", "MLflow experiment the run is logged in "
                                            "(created when missing)"),
    }, "at the end of a run, log its params, metrics.jsonl and plots/summary/config to "
       "MLflow (pip install 'blogml[mlflow]')", optional=True),
}, "experiment tracking once a run has finished or failed (README: Experiment tracking)")


def train_section(metrics: list[str], monitor: str, monitor_mode: str,
                  extra: dict[str, Spec] | None = None) -> Section:
    """The `train:` section; `metrics` are the task's eval metric names (for `monitor`),
    `extra` the task's own training keys (e.g. how often to draw samples)."""
    return Section({
        "epochs": Int(10, "passes over the training data", min=1),
        "steps_per_epoch": Int(None, "updates per epoch; null: one pass over the training set",
                               min=1),
        "batch_size": Int(32, "examples per update (the global batch)", min=1),
        "eval_every": Int(None, "steps between validations; null: at the end of every epoch",
                          min=1),
        "checkpoint_every": Int(None, "steps between `checkpoints/last` saves; null: every epoch",
                                min=1),
        "log_every": Int(50, "steps between metrics.jsonl/TensorBoard lines (mean over the window)",
                         min=1),
        "monitor": Str(monitor, "validation metric that picks `checkpoints/best`",
                       choices=[f"val_{m}" for m in metrics]),
        "monitor_mode": Str(monitor_mode, "whether a lower or higher `monitor` is better",
                            choices=["min", "max"]),
        "jit_compile": Choice(["auto", True, False], "auto", "XLA-compile the train step"),
        "mixed_precision": Choice(
            [False, True, "float16", "bfloat16"], False,
            "compute in float16 (Keras policy mixed_float16, with dynamic loss scaling; true "
            "means the same) or bfloat16 (mixed_bfloat16); variables, outputs and losses stay "
            "float32; false: float32 throughout"),
        **(extra or {}),
    })


def sample_keys(count: int, max_count: int) -> dict[str, Spec]:
    """`train.sample_every`/`train.sample_count` of tasks that draw samples/ grids."""
    return {
        "sample_every": Int(None, "steps between sample grids in samples/; null: every "
                                  "validation", min=1),
        "sample_count": Int(count, "images per sample grid", min=1, max=max_count),
    }


def task_schema(task: str, *, data: Section, model: Section, metrics: list[str],
                monitor: str, monitor_mode: str, extra_train: dict[str, Spec] | None = None,
                validators: list | None = None) -> Section:
    """The whole schema of one task: the shared keys plus its own `data` and `model`."""
    fields: dict[str, Spec] = {
        "task": Str(doc="which experiment this config runs"),
        "seed": Int(0, "seeds Python, NumPy, Keras and the data order", min=0),
        "run_dir": Template("runs/{task}-{time}", "run directory template; placeholders: "
                            + ", ".join("{%s}" % f for f in RUN_DIR_FIELDS), RUN_DIR_FIELDS),
        "backend": Str(_default_backend, "Keras backend (default: $KERAS_BACKEND or tensorflow)",
                       choices=BACKENDS),
        "data": data,
        "model": model,
        "optimizer": OPTIMIZER,
        "train": train_section(metrics, monitor, monitor_mode, extra_train),
        "distribution": DISTRIBUTION,
        "tracking": TRACKING,
    }
    return Section(fields, validators=[check_distribution, *(validators or [])])
