"""Experiment tracking (README: Experiment tracking): a run that has ended is recorded in
TensorBoard's HParams tab and/or an MLflow tracking store, as its config's `tracking:` asks.

Everything here reads what the run left in its run dir (summary.json, metrics.jsonl,
plots/, config.yaml), so it needs no Keras and can record the same run again: a run that
finishes after `--resume` replaces its HParams row and continues its one MLflow run
(`tracking.json` holds that run's id), logging only the steps the store does not hold yet.

Tracking is a convenience on top of a run that is already complete: `record` turns any
failure (MLflow not installed, a store that cannot be reached) into a warning naming the
fix, never into a failed run. MLflow and tensorboardX are imported only when used.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blogml.config.loader import LoadedConfig
from blogml.runners.events import as_number, read_events
from blogml.runners.rundir import RunDir, write_text_atomic

if TYPE_CHECKING:
    from blogml.runners.base import RunResult

log = logging.getLogger("blogml")

RECORDED = ("finished", "failed")  # an interrupted run is recorded when it finishes later
ALWAYS = ("task", "seed")  # hyperparameters of every run
FALLBACK = ("task", "seed", "optimizer.name")  # when the config says nothing of its origins
NOT_HYPERPARAMETERS = ("run_dir", "tracking")  # where a run goes, not how it trains
# Fields of a metrics.jsonl event that say when it happened rather than what was measured
# (the same split as `EventLog.write`'s values and context, which only TensorBoard sees).
CONTEXT = ("event", "step", "epoch", "time", "steps_per_sec")
HPARAMS_FOLDER = "hparams"  # under RUN_DIR/tensorboard/: one session, one row per run
STATE_FILE = "tracking.json"
INSTALL_HINT = "pip install 'blogml[mlflow]' (or pip install mlflow-skinny sqlalchemy alembic)"
# Environment variables that keep MLflow from phoning home (its telemetry reads both).
NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
_BATCH = 1000  # MLflow's limit of metrics per log_batch call
_PARAM_BATCH = 100  # and of params
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def record(loaded: LoadedConfig, run_dir: RunDir, result: RunResult) -> None:
    """Record an ended run as `tracking:` asks; a run still to be resumed waits.

    Called once `runner.train` has returned, when summary.json, metrics.jsonl and the
    plots are written. Never raises: the run is complete whatever happens here, so a
    failure is a warning that names the run dir and what to do.
    """
    settings = loaded.values.get("tracking") or {}
    if result.status not in RECORDED or not (settings.get("tensorboard_hparams")
                                             or settings.get("mlflow")):
        return
    try:
        hparams = hyperparameters(loaded, run_dir)
    except Exception as error:  # a config of a shape nobody foresaw: still not the run's fault
        log.warning("%s: not tracked: %s: %s", run_dir, type(error).__name__, error)
        return
    if settings.get("tensorboard_hparams"):
        _warn_on_failure("TensorBoard HParams", run_dir,
                         "check that the run dir's tensorboard/ folder is writable",
                         lambda: write_hparams(run_dir, hparams))
    mlflow_settings = settings.get("mlflow")
    if mlflow_settings:
        _warn_on_failure("MLflow", run_dir,
                         f"check that tracking.mlflow.uri ({mlflow_settings['uri']}) is "
                         "reachable and writable; the run itself is complete",
                         lambda: log_to_mlflow(mlflow_settings, loaded, run_dir, hparams))


def _warn_on_failure(what: str, run_dir: RunDir, fix: str, action: Any) -> None:
    """Run `action`; a failure of any kind (a Ctrl-C too: a finished run must not be
    taken for one stopped during its setup) becomes one warning line."""
    try:
        action()
    except ModuleNotFoundError as error:
        missing = error.name or "a module"
        hint = INSTALL_HINT if what == "MLflow" else f"pip install {missing}"
        log.warning("%s: not logged to %s: %s is not installed; %s", run_dir, what, missing,
                    hint)
    except KeyboardInterrupt:
        log.warning("%s: logging to %s skipped: interrupted", run_dir, what)
    except Exception as error:  # an unreachable store, a locked database, a full disk
        log.warning("%s: not logged to %s: %s: %s; %s", run_dir, what, type(error).__name__,
                    error, fix)


# ---- what is recorded --------------------------------------------------------------------


def hyperparameters(loaded: LoadedConfig, run_dir: RunDir | None = None) -> dict[str, Any]:
    """{dotted key: value} of the keys the user set or swept, plus `task` and `seed`.

    A key the user left alone holds its default in every run of a study, so it would only
    crowd the HParams table. Values are YAML scalars as they are (null as "null"), lists
    and mappings as compact JSON. Without origins (a config read back from its run dir),
    the names recorded for this run before are used, else `FALLBACK`.
    """
    names = list(ALWAYS)
    given = _given_names(loaded.values, loaded.origins)
    if not given and run_dir is not None:
        given = _read_state(run_dir).get("hparams") or []
    for name in given or FALLBACK:
        if name not in names:
            names.append(name)
    values = {}
    for name in names:
        found, value = _lookup(loaded.values, name)
        if found:
            values[name] = _hparam_value(value)
    return values


def _given_names(values: Mapping[str, Any], origins: Mapping[str, str]) -> list[str]:
    """The origin paths as hyperparameter names: each cut where the config's own keys end
    (inside a list, or a mapping of free keys such as `paramwise_lr` regexes, whose JSON
    is the value), without run_dir/tracking, and without a path another one details."""
    names: list[str] = []
    for path in origins:
        name = _name_of(values, path)
        if name and name.split(".")[0] not in NOT_HYPERPARAMETERS and name not in names:
            names.append(name)
    return [n for n in names if not any(o.startswith(n + ".") for o in names)]


def _name_of(values: Mapping[str, Any], path: str) -> str | None:
    """The longest prefix of `path` that walks the config's fixed keys; None if the path
    names no key of the resolved config."""
    node: Any = values
    parts: list[str] = []
    rest = path
    while rest:
        if not isinstance(node, Mapping):
            return ".".join(parts) or None  # a list item: the whole list
        keys = [str(k) for k in node]
        match = next((k for k in sorted(keys, key=len, reverse=True)
                      if rest == k or rest.startswith((k + ".", k + "["))), None)
        if match is None:
            return None  # not a key of the resolved config (e.g. `base`)
        if not _IDENTIFIER.match(match):
            return ".".join(parts) or None  # a free key: the mapping that holds it
        parts.append(match)
        node = node[next(k for k in node if str(k) == match)]
        rest = rest[len(match):].removeprefix(".")
    return ".".join(parts)


def _lookup(values: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    node: Any = values
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _hparam_value(value: Any) -> bool | int | float | str:
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), sort_keys=False)
    return value


def final_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """summary.json's best and final values: `best/val_accuracy`, `final/val_loss`,
    `final/train_loss`, ... (the columns a study is compared by)."""
    metrics: dict[str, float] = {}
    best = summary.get("best") or {}
    value = as_number(best.get("value")) if isinstance(best, Mapping) else None
    if value is not None and best.get("metric"):
        metrics[f"best/{best['metric']}"] = value
    final = summary.get("final") or {}
    for split in ("val", "train"):
        for name, value in (final.get(split) or {}).items():
            number = as_number(value)
            if name not in CONTEXT and number is not None:
                metrics[f"final/{split}_{name}"] = number
    return metrics


def metric_points(events: list[dict[str, Any]]) -> Iterator[tuple[str, int, float]]:
    """(name, step, value) of every measured value in metrics.jsonl, named `event/metric`
    (`train/loss`, `val/accuracy`): the tags TensorBoard shows for the same curves."""
    for event in events:
        kind, step = event.get("event"), event.get("step")
        if not isinstance(kind, str) or isinstance(step, bool) or not isinstance(step, int):
            continue
        for name, value in event.items():
            number = as_number(value)
            if name not in CONTEXT and number is not None:
                yield f"{kind}/{name}", step, number


# ---- TensorBoard -------------------------------------------------------------------------


def write_hparams(run_dir: RunDir, hparams: dict[str, Any]) -> Path:
    """The HParams summaries (experiment, session start, session end) and the final metrics
    as scalars, in RUN_DIR/tensorboard/hparams/ (replaced whole when written again, so a
    resumed run stays one row). `tensorboard --logdir runs/` shows one row per run."""
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams as hparams_summaries

    summary = run_dir.read_summary() or {}
    metrics = final_metrics(summary)
    step = summary.get("step") if isinstance(summary.get("step"), int) else 0
    experiment, start, end = hparams_summaries(hparams, metrics)
    if summary.get("status") == "failed":
        end = _failed_session_end()
    # Written beside tensorboard/, then moved in: TensorBoard never reads half a session.
    staging = run_dir.path / f".{HPARAMS_FOLDER}-{os.getpid()}"
    target = run_dir.tensorboard / HPARAMS_FOLDER
    shutil.rmtree(staging, ignore_errors=True)
    try:
        writer = SummaryWriter(str(staging), filename_suffix=".hparams")
        try:
            for item in (experiment, start, end):
                writer.file_writer.add_summary(item)
            for name, value in metrics.items():
                writer.add_scalar(name, value, step)
        finally:
            writer.close()
        run_dir.tensorboard.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _update_state(run_dir, {"hparams": list(hparams)})
    return target


def _failed_session_end() -> Any:
    """tensorboardX's session-end summary, with the status of a failed run (its own always
    says success)."""
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    content = HParamsPluginData(session_end_info=SessionEndInfo(
        status=Status.Value("STATUS_FAILURE"), end_time_secs=time.time()), version=0)
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
        plugin_name="hparams", content=content.SerializeToString()))
    return Summary(value=[Summary.Value(tag="_hparams_/session_end_info", metadata=metadata)])


# ---- MLflow ------------------------------------------------------------------------------


def import_mlflow() -> Any:
    """MLflow, with its telemetry off: nothing of a run may leave the machine unasked (a
    local store must work offline, and a study's configs are nobody else's business)."""
    os.environ.update(NO_TELEMETRY)
    import mlflow

    return mlflow


def store_uri(uri: str) -> str:
    """The config's `tracking.mlflow.uri` as MLflow takes it, independent of the working
    directory from now on: a relative SQLite file or folder made absolute (its folder
    created: SQLite makes no folders)."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if str(path) != ":memory:":
            path = path.absolute()
            path.parent.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{path}"
        return uri
    if re.match(r"^[A-Za-z][A-Za-z0-9.+-]+:", uri):
        if uri.startswith("file:") and not uri.startswith("file://"):
            return Path(uri[len("file:"):]).absolute().as_uri()
        return uri  # file:///abs, a database or a server: as written
    return Path(uri).absolute().as_uri()


def log_to_mlflow(settings: Mapping[str, Any], loaded: LoadedConfig, run_dir: RunDir,
                  hparams: dict[str, Any] | None = None) -> str:
    """Log the run (params, every metric step, plots/summary/config) to its MLflow run,
    created the first time and continued after a resume; returns the MLflow run id.
    `hparams`: the params (default: `hyperparameters(loaded, run_dir)`)."""
    if hparams is None:
        hparams = hyperparameters(loaded, run_dir)
    mlflow = import_mlflow()
    from mlflow.entities import Metric, Param, RunTag

    uri = store_uri(settings["uri"])
    if uri.startswith("file:"):
        # MLflow 3 refuses its folder store (maintenance only) unless asked; the config
        # asks for it by naming a folder.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = _experiment_id(client, settings["experiment"])
    summary = run_dir.read_summary() or {}
    run_id = _existing_run(client, run_dir, uri, experiment_id)
    if run_id is None:
        run_id = client.create_run(experiment_id, run_name=str(run_dir.path), tags={
            "blogml.run_dir": str(run_dir.path.absolute()),
            "blogml.task": str(loaded.values.get("task")),
            "blogml.config": loaded.source}).info.run_id
        # At once: if anything below fails, the next record continues this run.
        _update_state(run_dir, {"mlflow": {"uri": uri, "experiment_id": experiment_id,
                                           "run_id": run_id}})
    run = client.get_run(run_id)
    params = [Param(name, _param_text(value)) for name, value in hparams.items()
              if name not in run.data.params]  # a param cannot be logged twice
    for chunk in _chunks(params, _PARAM_BATCH):
        client.log_batch(run_id, params=chunk)
    logged = {key: max((m.step for m in client.get_metric_history(run_id, key)), default=-1)
              for key in run.data.metrics}
    now = int(time.time() * 1000)
    metrics = [Metric(name, value, now, step)
               for name, step, value in metric_points(read_events(run_dir.metrics))
               if step > logged.get(name, -1)]  # each step once, also across resumes
    for chunk in _chunks(metrics, _BATCH):
        client.log_batch(run_id, metrics=chunk)
    for path in sorted(run_dir.plots.glob("*.png")):
        client.log_artifact(run_id, str(path), artifact_path="plots")
    for path in (run_dir.summary_path, run_dir.config):
        if path.is_file():
            client.log_artifact(run_id, str(path))
    status = str(summary.get("status", ""))
    client.log_batch(run_id, tags=[RunTag("blogml.status", status)])
    client.set_terminated(run_id, "FAILED" if status == "failed" else "FINISHED")
    _update_state(run_dir, {"hparams": list(hparams)})
    return run_id


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _experiment_id(client: Any, name: str) -> str:
    """The experiment called `name`, created (or restored from the bin) when needed.

    A new experiment keeps MLflow's default artifact location (a database store: ./mlruns
    of the working directory, made absolute), not a folder beside the database: that is
    often inside runs/, where the copies of config.yaml and summary.json would look like
    runs to `blogml runs`."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name)
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _existing_run(client: Any, run_dir: RunDir, uri: str, experiment_id: str) -> str | None:
    """The MLflow run an earlier record of this run dir made in this store, if it is still
    there (a deleted one, or a store since replaced, gets a new run)."""
    saved = _read_state(run_dir).get("mlflow") or {}
    if saved.get("uri") != uri or saved.get("experiment_id") != experiment_id:
        return None
    try:
        run = client.get_run(saved["run_id"])
    except Exception:  # MlflowException: no such run in this store
        return None
    return run.info.run_id if run.info.lifecycle_stage == "active" else None


def _read_state(run_dir: RunDir) -> dict[str, Any]:
    try:
        state = json.loads((run_dir.path / STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, ValueError, UnicodeDecodeError):
        return {}
    return state if isinstance(state, dict) else {}


def _update_state(run_dir: RunDir, changes: dict[str, Any]) -> None:
    """RUN_DIR/tracking.json: what a later record of this run needs to continue it."""
    state = {**_read_state(run_dir), **changes}
    write_text_atomic(run_dir.path / STATE_FILE, json.dumps(state, indent=2) + "\n")
