"""Experiment tracking (`tracking:`): TensorBoard's HParams summary and an MLflow run per run
dir, read back with readers other than the writers (TensorFlow's event reader, MlflowClient);
a resumed run stays one row / one run with each step once; tracking never fails a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from blogml.config.loader import LoadedConfig
from blogml.runners import tracking
from blogml.runners.events import read_events
from blogml.runners.rundir import RunDir
from blogml.tasks.configs import check_config, load_configs
from tests.conftest import REPO, cli_env, sigterm_at, tiny_config, write_config


def tracking_section(folder: Path, hparams: bool = True, mlflow: bool = True) -> dict:
    return {"tensorboard_hparams": hparams,
            "mlflow": {"uri": f"sqlite:///{folder}/mlflow.db", "experiment": "study"}
            if mlflow else None}


def client_of(folder: Path) -> Any:
    return tracking.import_mlflow().MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db")


def runs_of(folder: Path, experiment: str = "study") -> list[Any]:
    """Every MLflow run of the experiment, deleted ones included."""
    from mlflow.entities import ViewType

    client = client_of(folder)
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id],
                                                        run_view_type=ViewType.ALL)


def history(folder: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client_of(folder).get_metric_history(run_id, key))


def recorded(run: Path, event: str, name: str) -> list[tuple[int, float]]:
    return [(e["step"], e[name]) for e in read_events(run / "metrics.jsonl")
            if e["event"] == event]


def given_leaves(config: dict, prefix: str = "") -> dict[str, Any]:
    """{dotted path: value} of every value a config file gives."""
    leaves = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            leaves.update(given_leaves(value, f"{prefix}{key}."))
        else:
            leaves[f"{prefix}{key}"] = value
    return leaves


def expected_hparams(config: dict) -> dict[str, Any]:
    """The README's rule, written out: the given keys but run_dir and tracking, lists as
    compact JSON."""
    return {key: json.dumps(value, separators=(",", ":")) if isinstance(value, list) else value
            for key, value in given_leaves(config).items()
            if key.split(".")[0] not in ("run_dir", "tracking")}


def as_param(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def hparams_session(run: Path) -> tuple[dict[str, Any], dict[str, float], dict[str, Any]]:
    """(hparams, scalars, plugin data by tag) of the run's one HParams event file, read
    with TensorFlow's event reader."""
    import tensorflow as tf
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    files = list((run / "tensorboard" / "hparams").iterdir())
    assert len(files) == 1, files
    plugin, scalars = {}, {}
    for event in tf.compat.v1.train.summary_iterator(str(files[0])):
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "hparams":
                plugin[value.tag] = HParamsPluginData.FromString(
                    value.metadata.plugin_data.content)
            elif value.WhichOneof("value") == "simple_value":
                scalars[value.tag] = value.simple_value
            else:
                scalars[value.tag] = float(tf.make_ndarray(value.tensor))
    start = plugin["_hparams_/session_start_info"].session_start_info
    hparams = {name: getattr(v, v.WhichOneof("kind")) for name, v in start.hparams.items()}
    return hparams, scalars, plugin


def end_status(plugin: dict[str, Any]) -> str:
    from tensorboardX.proto.api_pb2 import Status

    return Status.Name(plugin["_hparams_/session_end_info"].session_end_info.status)


# ---- config ------------------------------------------------------------------------------


def test_tracking_is_off_unless_asked():
    values, issues = check_config({"task": "optbench"}, "x.yaml")
    assert issues == []
    assert values["tracking"] == {"tensorboard_hparams": False, "mlflow": None}
    values, _ = check_config({"task": "optbench", "tracking": {"mlflow": {"uri": "mlruns"}}},
                             "x.yaml")
    assert values["tracking"]["mlflow"] == {"uri": "mlruns", "experiment": "blogml"}


@pytest.mark.parametrize("section, expected", [
    ({"tensorboard_hparam": True},
     "x.yaml: tracking.tensorboard_hparam: unknown key; did you mean 'tensorboard_hparams'?"),
    ({"tensorboard_hparams": "yes"},
     "x.yaml: tracking.tensorboard_hparams: must be true or false, got 'yes'"),
    ({"mlflow": {"experiment": "study"}},
     "x.yaml: tracking.mlflow.uri: missing required key (an MLflow tracking URI "
     "(sqlite:///FILE.db, file:FOLDER, http(s)://...) or a folder)"),
    ({"mlflow": {"uri": "sqllite:///runs/mlflow.db"}},
     "x.yaml: tracking.mlflow.uri: unknown scheme 'sqllite:'; did you mean 'sqlite'? "
     "(e.g. sqlite:///runs/mlflow.db)"),
    ({"mlflow": {"uri": "sqlite://runs/mlflow.db"}},
     "x.yaml: tracking.mlflow.uri: a SQLite store is sqlite:/// and the file's path: "
     "sqlite:///runs/mlflow.db (relative to the working directory) or "
     "sqlite:////abs/path/mlflow.db"),
    ({"mlflow": {"uri": "runs/mlflow", "experiment": " "}},
     "x.yaml: tracking.mlflow.experiment: must not be empty; write a name, e.g. study"),
    ({"mlflow": "sqlite:///runs/mlflow.db"},
     "x.yaml: tracking.mlflow: must be a mapping or null, got 'sqlite:///runs/mlflow.db'"),
])
def test_a_wrong_tracking_key_is_named_with_its_fix(section, expected):
    _, issues = check_config({"task": "optbench", "tracking": section}, "x.yaml")
    assert [str(issue) for issue in issues] == [expected]


def test_a_server_uri_is_accepted_by_the_check():
    _, issues = check_config({"task": "optbench", "tracking": {
        "mlflow": {"uri": "https://mlflow.example.org", "experiment": "study"}}}, "x.yaml")
    assert issues == []


# ---- what is recorded --------------------------------------------------------------------


def loaded_with(origins: dict[str, str], **sections: Any) -> LoadedConfig:
    raw = tiny_config(**sections)
    values, issues = check_config(raw, "x.yaml")
    assert issues == []
    return LoadedConfig("x.yaml", values, origins)


def test_hyperparameters_are_the_given_keys_plus_task_and_seed():
    loaded = loaded_with(
        {"model.hidden_units": "x.yaml:5", "model.hidden_units[0]": "x.yaml:5",
         "optimizer.learning_rate": "--set", "optimizer.paramwise_lr.dense.*": "x.yaml:9",
         "optimizer.schedule.piecewise_linear.100": "x.yaml:11", "optimizer.lookahead": "x:12",
         "run_dir": "x.yaml:3", "tracking.tensorboard_hparams": "x.yaml:14",
         "train.mixed_precision": "--sweep", "base": "x.yaml:1"},
        optimizer={"name": "adam", "learning_rate": 3e-4, "paramwise_lr": {"dense.*": 2.0},
                   "schedule": {"piecewise_linear": {100: 1.0}}, "lookahead": {}},
        tracking={"tensorboard_hparams": True})
    assert tracking.hyperparameters(loaded) == {
        "task": "optbench", "seed": 1, "model.hidden_units": "[16]",
        "optimizer.learning_rate": 3e-4, "optimizer.paramwise_lr": '{"dense.*":2.0}',
        "optimizer.schedule.piecewise_linear": '{"100":1.0}',
        "optimizer.lookahead": '{"k":5,"alpha":0.5}', "train.mixed_precision": False}


def test_without_origins_the_hyperparameters_are_task_seed_and_optimizer_name(tmp_path):
    loaded = loaded_with({})
    assert tracking.hyperparameters(loaded) == {"task": "optbench", "seed": 1,
                                                "optimizer.name": "adam"}
    # A run dir recorded before keeps its names (a --run-dir resume has no origins).
    (tmp_path / "tracking.json").write_text(json.dumps({"hparams": ["task", "seed",
                                                                    "model.dropout"]}))
    assert tracking.hyperparameters(loaded, RunDir(tmp_path)) == {
        "task": "optbench", "seed": 1, "model.dropout": 0.1}


def test_final_metrics_are_summary_best_and_final_values():
    summary = {"best": {"metric": "val_accuracy", "value": 0.75, "step": 16},
               "final": {"val": {"loss": 0.5, "accuracy": 0.7},
                         "train": {"event": "train", "step": 32, "epoch": 2, "loss": 0.4,
                                   "lr": 0.01, "steps_per_sec": 90.0, "time": 1.5}}}
    assert tracking.final_metrics(summary) == {
        "best/val_accuracy": 0.75, "final/val_loss": 0.5, "final/val_accuracy": 0.7,
        "final/train_loss": 0.4, "final/train_lr": 0.01}


def fake_run(folder: Path, steps: range, status: str = "finished") -> RunDir:
    """A run dir as a run leaves it (no training): config, metrics.jsonl, summary, a plot."""
    run = RunDir(folder)
    run.create()
    run.config.write_text(yaml.safe_dump(tiny_config()))
    with open(run.metrics, "a") as handle:
        for step in steps:
            handle.write(json.dumps({"event": "train", "step": step, "epoch": 1,
                                     "loss": 1.0 / step, "lr": 0.01, "time": 0.1}) + "\n")
            if step % 4 == 0:
                handle.write(json.dumps({"event": "val", "step": step, "loss": 2.0 / step,
                                         "accuracy": step / 100, "time": 0.2}) + "\n")
    last = steps[-1]
    run.write_summary({"status": status, "step": last,
                       "best": {"metric": "val_accuracy", "value": last / 100, "step": last},
                       "final": {"val": {"loss": 2.0 / last, "accuracy": last / 100},
                                 "train": {"event": "train", "step": last, "loss": 1.0 / last}}})
    (run.plots / "loss.png").write_bytes(b"\x89PNG fake")
    return run


def test_an_interrupted_run_is_not_recorded(tmp_path):
    run = fake_run(tmp_path / "run", range(1, 9), status="interrupted")
    loaded = loaded_with({}, tracking=tracking_section(tmp_path))
    tracking.record(loaded, run, SimpleNamespace(status="interrupted"))
    assert not (run.tensorboard / "hparams").exists()
    assert not (run.path / "tracking.json").exists()
    assert not (tmp_path / "mlflow.db").exists()


def test_hparams_written_again_replace_the_earlier_session(tmp_path):
    run = fake_run(tmp_path / "run", range(1, 9), status="failed")
    loaded = loaded_with({"model.dropout": "x.yaml:6"})
    tracking.write_hparams(run, tracking.hyperparameters(loaded))
    _, scalars, plugin = hparams_session(run.path)
    assert end_status(plugin) == "STATUS_FAILURE"
    assert scalars["best/val_accuracy"] == pytest.approx(0.08)

    fake_run(run.path, range(9, 13))  # resumed and finished at step 12
    tracking.write_hparams(run, tracking.hyperparameters(loaded))
    hparams, scalars, plugin = hparams_session(run.path)  # one file, the new one
    assert hparams == {"task": "optbench", "seed": 1.0, "model.dropout": 0.1}
    assert end_status(plugin) == "STATUS_SUCCESS"
    assert scalars == pytest.approx({"best/val_accuracy": 0.12, "final/val_loss": 2 / 12,
                                     "final/val_accuracy": 0.12, "final/train_loss": 1 / 12})
    assert sorted(p.name for p in run.path.iterdir() if p.name.startswith(".")) == []


def test_logging_a_run_again_continues_its_one_mlflow_run_each_step_once(in_tmp):
    tmp_path = in_tmp  # MLflow puts a sqlite store's artifacts in ./mlruns
    run = fake_run(tmp_path / "run", range(1, 10), status="failed")
    loaded = loaded_with({"model.dropout": "x.yaml:6"}, tracking=tracking_section(tmp_path))
    settings = loaded.values["tracking"]["mlflow"]
    first = tracking.log_to_mlflow(settings, loaded, run)
    assert client_of(tmp_path).get_run(first).info.status == "FAILED"

    # Resumed from its checkpoint at step 8: steps 9.. are trained (and written) again.
    kept = [e for e in read_events(run.metrics) if e["step"] <= 8]
    run.metrics.write_text("".join(json.dumps(e) + "\n" for e in kept))
    fake_run(run.path, range(9, 17))
    second = tracking.log_to_mlflow(settings, loaded, run)

    assert second == first and [r.info.run_id for r in runs_of(tmp_path)] == [first]
    mlflow_run = client_of(tmp_path).get_run(first)
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.info.run_name == str(run.path)
    assert mlflow_run.data.params == {"task": "optbench", "seed": "1", "model.dropout": "0.1"}
    assert history(tmp_path, first, "train/loss") == recorded(run.path, "train", "loss")
    assert [s for s, _ in history(tmp_path, first, "train/loss")] == list(range(1, 17))
    assert history(tmp_path, first, "val/accuracy") == recorded(run.path, "val", "accuracy")
    assert "train/epoch" not in mlflow_run.data.metrics  # context, not a measurement
    assert json.loads((run.path / "tracking.json").read_text())["mlflow"]["run_id"] == first


def test_a_deleted_mlflow_run_is_replaced_by_a_new_one(in_tmp):
    tmp_path = in_tmp  # MLflow puts a sqlite store's artifacts in ./mlruns
    run = fake_run(tmp_path / "run", range(1, 5))
    loaded = loaded_with({}, tracking=tracking_section(tmp_path))
    settings = loaded.values["tracking"]["mlflow"]
    first = tracking.log_to_mlflow(settings, loaded, run)
    client_of(tmp_path).delete_run(first)
    second = tracking.log_to_mlflow(settings, loaded, run)
    assert second != first
    assert history(tmp_path, second, "train/loss") == recorded(run.path, "train", "loss")


@pytest.mark.parametrize("uri", ["stores/mlruns", "file:stores/mlruns"])
def test_a_folder_store_is_accepted(in_tmp, monkeypatch, uri):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "unset below, restored after the test")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # what blogml sets for a folder store
    run = fake_run(in_tmp / "run", range(1, 5))
    loaded = loaded_with({}, tracking={"mlflow": {"uri": uri, "experiment": "study"}})
    run_id = tracking.log_to_mlflow(loaded.values["tracking"]["mlflow"], loaded, run)
    client = tracking.import_mlflow().MlflowClient(tracking_uri=str(in_tmp / "stores/mlruns"))
    assert sorted((m.step, m.value) for m in client.get_metric_history(run_id, "train/loss")) \
        == recorded(run.path, "train", "loss")


NO_NETWORK = """
import ipaddress, json, socket, sys, threading, time
sys.path.insert(0, {repo!r})
attempts = []

def local(host):
    if not isinstance(host, str) or host in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False

real_connect, real_connect_ex, real_getaddrinfo = (socket.socket.connect,
                                                   socket.socket.connect_ex, socket.getaddrinfo)

def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
        attempts.append(repr(address))
        raise OSError("network blocked by the test")
    return real_connect(self, address)

def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
        attempts.append(repr(address))
        return 111
    return real_connect_ex(self, address)

def getaddrinfo(host, *args, **kwargs):
    if not local(host if isinstance(host, str) else None):
        attempts.append(repr(host))
        raise socket.gaierror("network blocked by the test")
    return real_getaddrinfo(host, *args, **kwargs)

socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = (connect, connect_ex,
                                                                      getaddrinfo)
from tests.test_tracking import fake_run, loaded_with, tracking_section
from blogml.runners import tracking
from pathlib import Path

folder = Path(sys.argv[1])
loaded = loaded_with({{}}, tracking=tracking_section(folder))
run_id = tracking.log_to_mlflow(loaded.values["tracking"]["mlflow"], loaded,
                                fake_run(folder / "run", range(1, 9)))
deadline = time.monotonic() + 5  # MLflow's telemetry works in background threads
for thread in threading.enumerate():
    if thread is not threading.current_thread():
        thread.join(max(0.0, deadline - time.monotonic()))
from mlflow.telemetry import get_telemetry_client
print(json.dumps({{"run_id": run_id, "attempts": attempts,
                   "telemetry": get_telemetry_client() is not None}}))
"""

# Any of these tells MLflow it runs under CI or pytest, which turns its telemetry off by
# itself: removed, so that only blogml's own settings keep it quiet.
CI_MARKERS = ("CI", "PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI",
              "JENKINS_URL", "TRAVIS", "BUILDKITE", "TEAMCITY_VERSION", "CODEBUILD_BUILD_ARN",
              "BITBUCKET_BUILD_NUMBER", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")


@pytest.mark.slow
def test_logging_to_a_local_store_opens_no_network_connection(tmp_path):
    script = tmp_path / "no_network.py"
    script.write_text(NO_NETWORK.format(repo=str(REPO)))
    env = {k: v for k, v in cli_env().items() if k not in CI_MARKERS}
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [] and report["telemetry"] is False
    assert [r.info.run_id for r in runs_of(tmp_path)] == [report["run_id"]]


# ---- whole runs --------------------------------------------------------------------------


def train(*args: Any, **kwargs: Any) -> Any:
    """`blogml train` in this process (so a test can patch it): plan, then execute."""
    from blogml.runners.launch import execute
    from blogml.runners.planning import plan_runs

    (plan,) = plan_runs(*args, **kwargs)
    return execute(plan)


@pytest.mark.slow
def test_a_finished_run_is_one_hparams_row_and_one_mlflow_run(in_tmp):
    path = write_config(in_tmp, "tiny", tracking=tracking_section(in_tmp))
    config = yaml.safe_load(path.read_text())
    outcome = train(load_configs([str(path)]), None, False)
    assert (outcome.status, outcome.exit_code) == ("finished", 0)
    run = in_tmp / "runs/tiny"
    summary = json.loads((run / "summary.json").read_text())
    given = expected_hparams(config)

    hparams, scalars, plugin = hparams_session(run)
    assert hparams == {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                       for k, v in given.items()}  # numbers are float64 in HParams
    experiment = plugin["_hparams_/experiment"].experiment
    assert {info.name for info in experiment.hparam_infos} == set(given)
    final = summary["final"]
    assert scalars == pytest.approx({
        "best/val_accuracy": summary["best"]["value"],
        **{f"final/val_{k}": v for k, v in final["val"].items()},
        **{f"final/train_{k}": v for k, v in final["train"].items()
           if k not in ("event", "step", "epoch", "time", "steps_per_sec")}}, rel=1e-6)
    assert {"final/train_loss", "final/train_accuracy", "final/val_loss"} <= set(scalars)
    assert {m.name.tag for m in experiment.metric_infos} == set(scalars)

    (mlflow_run,) = runs_of(in_tmp)
    run_id = mlflow_run.info.run_id
    assert mlflow_run.info.status == "FINISHED" and mlflow_run.info.run_name == "runs/tiny"
    assert mlflow_run.data.params == {k: as_param(v) for k, v in given.items()}
    assert history(in_tmp, run_id, "train/loss") == recorded(run, "train", "loss")
    assert [s for s, _ in history(in_tmp, run_id, "train/loss")] == list(range(1, 33))
    assert history(in_tmp, run_id, "val/accuracy") == recorded(run, "val", "accuracy")
    client = client_of(in_tmp)
    artifacts = {a.path for folder in (None, "plots") for a in client.list_artifacts(run_id,
                                                                                     folder)}
    assert {"summary.json", "config.yaml", "plots/loss.png", "plots/accuracy.png"} <= artifacts
    copy = client.download_artifacts(run_id, "summary.json", str(in_tmp))
    assert Path(copy).read_text() == (run / "summary.json").read_text()


@pytest.mark.slow
def test_an_interrupted_then_resumed_run_is_one_mlflow_run_with_each_step_once(
        in_tmp, monkeypatch):
    from blogml.tasks.registry import TASKS

    path = write_config(in_tmp, "tiny", tracking=tracking_section(in_tmp))
    with monkeypatch.context() as patch:
        sigterm_at(patch, TASKS["optbench"].runner_class(), 10)
        stopped = train(load_configs([str(path)]), None, False)
    assert (stopped.status, stopped.exit_code) == ("interrupted", 130)
    run = in_tmp / "runs/tiny"
    assert runs_of(in_tmp) == [] and not (run / "tensorboard/hparams").exists()

    resumed = train(load_configs([str(path)]), None, True)
    assert (resumed.status, resumed.exit_code) == ("finished", 0)
    (mlflow_run,) = runs_of(in_tmp)
    steps = history(in_tmp, mlflow_run.info.run_id, "train/loss")
    assert [s for s, _ in steps] == list(range(1, 33))
    assert steps == recorded(run, "train", "loss")
    assert hparams_session(run)[0]["model.dropout"] == 0.1  # one session, all given keys


@pytest.mark.slow
def test_a_failed_run_resumed_to_its_end_keeps_one_mlflow_run_and_each_step_once(
        in_tmp, monkeypatch):
    from blogml.tasks.registry import TASKS

    runner_class = TASKS["optbench"].runner_class()
    real = runner_class.train_batches

    def crashing(self, start_step):  # a fresh run crashes before step 20 (last save: 16)
        for step, batch in enumerate(real(self, start_step), start=start_step + 1):
            if step == 20 and start_step == 0:
                raise RuntimeError("a crash in task code")
            yield batch

    path = write_config(in_tmp, "tiny", tracking=tracking_section(in_tmp))
    with monkeypatch.context() as patch:
        patch.setattr(runner_class, "train_batches", crashing)
        failed = train(load_configs([str(path)]), None, False)
    assert (failed.status, failed.exit_code) == ("failed", 1)
    run = in_tmp / "runs/tiny"
    (mlflow_run,) = runs_of(in_tmp)
    run_id = mlflow_run.info.run_id
    assert mlflow_run.info.status == "FAILED"
    assert [s for s, _ in history(in_tmp, run_id, "train/loss")] == list(range(1, 20))

    resumed = train(load_configs([str(path)]), None, True)  # from step 16
    assert (resumed.status, resumed.exit_code) == ("finished", 0)
    (mlflow_run,) = runs_of(in_tmp)
    assert (mlflow_run.info.run_id, mlflow_run.info.status) == (run_id, "FINISHED")
    steps = history(in_tmp, run_id, "train/loss")
    assert [s for s, _ in steps] == list(range(1, 33))
    # Steps 17-19 are the failed attempt's, equal to the resumed ones (resume is exact).
    assert [v for _, v in steps] == pytest.approx([v for _, v in recorded(run, "train", "loss")],
                                                  rel=1e-5)
    _, _, plugin = hparams_session(run)  # one session, now a successful one
    assert end_status(plugin) == "STATUS_SUCCESS"


@pytest.mark.slow
def test_without_mlflow_installed_the_run_finishes_with_a_warning(in_tmp, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow: ModuleNotFoundError
    path = write_config(in_tmp, "tiny", tracking=tracking_section(in_tmp))
    outcome = train(load_configs([str(path)]), None, False)
    assert (outcome.status, outcome.exit_code) == ("finished", 0)
    run = in_tmp / "runs/tiny"
    log = (run / "train.log").read_text()
    assert ("runs/tiny: not logged to MLflow: mlflow is not installed; "
            "pip install 'blogml[mlflow]'") in log
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"
    assert (run / "tensorboard/hparams").is_dir()  # the other half of tracking still done
    assert not (in_tmp / "mlflow.db").exists()


@pytest.mark.slow
def test_an_unusable_store_is_a_warning_not_a_failed_run(in_tmp):
    (in_tmp / "blocked").write_text("a file where the store's folder should be")
    path = write_config(in_tmp, "tiny", tracking={
        "mlflow": {"uri": "sqlite:///blocked/mlflow.db", "experiment": "study"}})
    outcome = train(load_configs([str(path)]), None, False)
    assert (outcome.status, outcome.exit_code) == ("finished", 0)
    log = (in_tmp / "runs/tiny/train.log").read_text()
    assert "runs/tiny: not logged to MLflow:" in log
    assert "check that tracking.mlflow.uri (sqlite:///blocked/mlflow.db) is reachable" in log


@pytest.mark.slow
def test_the_tracking_module_needs_no_keras():
    code = ("import sys; import blogml.runners.tracking; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'mlflow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
