"""`distribution.strategy`: a distributed step equals the single-device step on the same
global batch (mirrored and multi_worker on TensorFlow, data_parallel on JAX), on 2 logical
CPU devices or 2 local workers, each in fresh processes (devices are fixed at start-up)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from blogml.runners.events import read_events
from blogml.tasks.configs import check_config
from tests.conftest import REPO, assert_same_checkpoint, cli_env, tiny_config
from tests.test_nl2sql_run import nl2sql_config
from tests.test_vqvae_run import vqvae_config

# Accumulation (2 micro-batches per update) and EMA: the optimizer state that must stay in
# step across replicas. No dropout: each replica draws its own masks.
OPTIMIZER = {"name": "adam", "learning_rate": 1e-2, "gradient_accumulation_steps": 2,
             "ema": {"momentum": 0.9}}
TRAIN = {"epochs": 1, "steps_per_epoch": 4, "batch_size": 32, "log_every": 1, "eval_every": 4}


def _write(folder: Path, name: str, config: dict[str, Any]) -> str:
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return f"{name}.yaml"


def _optbench(backend: str, strategy: str, **train: Any) -> dict[str, Any]:
    return tiny_config(backend=backend, model={"hidden_units": [16], "dropout": 0.0},
                       optimizer=OPTIMIZER, train={**TRAIN, **train},
                       distribution={"strategy": strategy}, run_dir="runs/{config}")


def _vqvae(folder: Path, data: Path, backend: str, strategy: str) -> dict[str, Any]:
    config = yaml.safe_load(vqvae_config(folder, data, "vq-template", epochs=1,
                                         steps_per_epoch=2, eval_every=2).read_text())
    # SGD, not Adam: the conv biases before BatchNormalization get gradients of rounding
    # size, which Adam's g/√v would blow up to a full step whatever their sign.
    return {**config, "backend": backend, "run_dir": "runs/{config}",
            "optimizer": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
            "distribution": {"strategy": strategy}}


def _train(args: list[str], cwd: Path, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True, timeout=300)


def _summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text())


def _assert_same_runs(root: Path, pairs: list[tuple[str, str]]) -> None:
    for single, distributed in pairs:
        assert _summary(root / distributed)["distribution"]["replicas"] == 2
        assert_same_checkpoint(root / single / "checkpoints/last",
                               root / distributed / "checkpoints/last", atol=1e-5)


def _nl2sql(folder: Path, data: Path, backend: str, strategy: str) -> dict[str, Any]:
    config = yaml.safe_load(nl2sql_config(folder, data, "nl-template", epochs=1).read_text())
    # No dropout on TensorFlow: each tf.distribute replica draws its own masks (JAX's
    # DataParallel draws the global batch's, as one device does).
    model = {**config["model"], "dropout": 0.0} if backend == "tensorflow" else config["model"]
    return {**config, "backend": backend, "model": model, "run_dir": "runs/{config}",
            "distribution": {"strategy": strategy}}


def _prior(backend: str, strategy: str) -> dict[str, Any]:
    """The prior over the codes of the run `runs/vq` (dropout off, as for NL2SQL). SGD, as
    for the VQ-VAE: the attention's key bias has a zero gradient up to rounding."""
    return {"task": "vqvae_prior", "seed": 0, "backend": backend, "run_dir": "runs/{config}",
            "data": {"vqvae_run": "runs/vq"},
            "model": {"hidden": 16, "layers": 1, "heads": 2, "dropout": 0.0},
            "optimizer": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
            "train": {**TRAIN, "batch_size": 16, "sample_every": 4, "sample_count": 3},
            "distribution": {"strategy": strategy}}


def _first_train_log(run: Path) -> dict[str, float]:
    """The metrics logged after the first step (log_every: 1), without the timings."""
    first = next(e for e in read_events(run / "metrics.jsonl") if e["event"] == "train")
    return {k: v for k, v in first.items()
            if isinstance(v, float) and k not in ("steps_per_sec", "time")}


# `blogml ARGS` in a fresh process (after running SETUP, a script that fixes the devices, or
# "-"), logging every prior sampling to $SAMPLE_LOG: the run, its replicas, and the shape
# of each output of the prediction function `prior.sample` is given.
COUNTING_BLOGML = """
import json, os, runpy, sys

setup = sys.argv.pop(1)
if setup != "-":
    runpy.run_path(setup, run_name="setup")
from blogml.cli.main import cli
from blogml.tasks.registry import Task  # no Keras yet: the run picks the backend

def counting(runner_class):
    real = runner_class.write_samples

    def write_samples(self, path, count, *args, **kwargs):
        shapes, predict = [], self.distribution.predict_on_batch

        def counted(model, tokens):
            out = predict(model, tokens)
            shapes.append([int(d) for d in out.shape])
            return out

        self.distribution.predict_on_batch = counted
        try:
            return real(self, path, count, *args, **kwargs)
        finally:
            del self.distribution.predict_on_batch
            with open(os.environ["SAMPLE_LOG"], "a") as log:
                log.write(json.dumps({"run": self.run_dir.path.name, "count": count,
                                      "replicas": self.distribution.replicas,
                                      "grid": self.grid, "num_codes": self.num_codes,
                                      "outputs": shapes}) + "\\n")

    runner_class.write_samples = write_samples
    runner_class.counting = True

real_runner_class = Task.runner_class

def runner_class(self):
    found = real_runner_class(self)
    if self.name == "vqvae_prior" and not getattr(found, "counting", False):
        counting(found)
    return found

Task.runner_class = runner_class
cli(sys.argv[1:], prog_name="blogml")
"""


def _train_priors(folder: Path, setup: str, priors: list[str], env: dict[str, str]
                  ) -> list[dict[str, Any]]:
    """Train `priors` as `_train` does, with every sampling logged (see COUNTING_BLOGML)."""
    script, log = folder / "counting_blogml.py", folder / "samples.jsonl"
    script.write_text(COUNTING_BLOGML)
    result = _train([str(script), setup, "train", *priors], folder,
                    dict(env, SAMPLE_LOG=str(log)))
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


def _assert_one_call_per_position(samplings: list[dict[str, Any]], runs: dict[str, int]
                                  ) -> None:
    """Each sample grid of each run (name: replicas) took exactly grid² calls of the
    prediction, each one model output over the 3 rows sampled (not one per replica: a
    mirrored Keras `predict_on_batch` would return each row once per replica)."""
    assert sorted({s["run"] for s in samplings}) == sorted(runs)
    for s in samplings:
        assert s["replicas"] == runs[s["run"]]
        positions = s["grid"] ** 2
        assert s["count"] == 3 and positions >= 4
        assert s["outputs"] == [[3, positions, s["num_codes"]]] * positions, s["run"]


@pytest.mark.slow
def test_mirrored_step_equals_one_device(in_tmp, faces, demo_data):
    # The VQ-VAE's BatchNormalization and EMA codebook take global-batch statistics, and
    # NL2SQL's masked losses divide by the global count of masked positions.
    configs = [_write(in_tmp, "opt", _optbench("tensorflow", "none")),
               _write(in_tmp, "opt-mirrored", _optbench("tensorflow", "mirrored")),
               _write(in_tmp, "odd", _optbench("tensorflow", "mirrored", batch_size=31)),
               _write(in_tmp, "vq", _vqvae(in_tmp, faces, "tensorflow", "none")),
               _write(in_tmp, "vq-mirrored", _vqvae(in_tmp, faces, "tensorflow", "mirrored")),
               _write(in_tmp, "nl", _nl2sql(in_tmp, demo_data, "tensorflow", "none")),
               _write(in_tmp, "nl-mirrored",
                      _nl2sql(in_tmp, demo_data, "tensorflow", "mirrored"))]
    result = _train([str(REPO / "tests/two_cpu_blogml.py"), "train", *configs], in_tmp)
    assert "train.batch_size: 31 does not split evenly over the 2 replicas" in result.stderr
    priors = [_write(in_tmp, "prior", _prior("tensorflow", "none")),
              _write(in_tmp, "prior-mirrored", _prior("tensorflow", "mirrored"))]
    samplings = _train_priors(in_tmp, str(REPO / "tests/two_cpu_blogml.py"), priors, cli_env())
    root = in_tmp / "runs"
    _assert_same_runs(root, [("opt", "opt-mirrored"), ("vq", "vq-mirrored"),
                             ("nl", "nl-mirrored"), ("prior", "prior-mirrored")])
    # The prior samples through one model call per position, not one per replica (3 rows).
    _assert_one_call_per_position(samplings, {"prior": 1, "prior-mirrored": 2})
    assert (root / "prior-mirrored/samples/samples_0000004.png").is_file()
    # The logs are the global batch's too: the code histogram (perplexity, codes used) is
    # summed over the replicas, the heads' losses are global masked means, and NL2SQL's
    # decoded val metrics (one model call per batch, not one per replica) are the same.
    for single, mirrored in (("vq", "vq-mirrored"), ("nl", "nl-mirrored")):
        assert _first_train_log(root / mirrored) == pytest.approx(
            _first_train_log(root / single), rel=1e-5)
        assert _summary(root / mirrored)["final"]["val"] == pytest.approx(
            _summary(root / single)["final"]["val"], rel=1e-5)


@pytest.mark.slow
def test_data_parallel_step_equals_one_device(in_tmp, faces, demo_data):
    configs = [_write(in_tmp, "opt", _optbench("jax", "none")),
               _write(in_tmp, "opt-dp", _optbench("jax", "data_parallel")),
               _write(in_tmp, "vq", _vqvae(in_tmp, faces, "jax", "none")),
               _write(in_tmp, "vq-dp", _vqvae(in_tmp, faces, "jax", "data_parallel")),
               _write(in_tmp, "nl", _nl2sql(in_tmp, demo_data, "jax", "none")),
               _write(in_tmp, "nl-dp", _nl2sql(in_tmp, demo_data, "jax", "data_parallel"))]
    env = dict(cli_env(), XLA_FLAGS="--xla_force_host_platform_device_count=2")
    result = _train(["-m", "blogml", "train", *configs], in_tmp, env)
    assert result.returncode == 0, result.stdout + result.stderr
    priors = [_write(in_tmp, "prior", _prior("jax", "none")),
              _write(in_tmp, "prior-dp", _prior("jax", "data_parallel"))]
    samplings = _train_priors(in_tmp, "-", priors, env)
    _assert_same_runs(in_tmp / "runs", [("opt", "opt-dp"), ("vq", "vq-dp"), ("nl", "nl-dp"),
                                        ("prior", "prior-dp")])
    _assert_one_call_per_position(samplings, {"prior": 1, "prior-dp": 2})
    assert (in_tmp / "runs/prior-dp/samples/samples_0000004.png").is_file()
    # Evaluation on the sharded model decodes the same SQL: the same val metrics.
    assert _summary(in_tmp / "runs/nl")["final"]["val"] == \
        _summary(in_tmp / "runs/nl-dp")["final"]["val"]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(folder: Path, *args: str) -> list[subprocess.Popen]:
    """Two local workers of one multi_worker `blogml train ARGS`, on loopback ports."""
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = dict(cli_env(), TF_CONFIG=json.dumps(tf_config))
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "blogml", "train", *args], cwd=folder,
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return workers


@pytest.mark.slow
def test_multi_worker_chief_checkpoints_equal_one_process(in_tmp, faces):
    singles = [_write(in_tmp, "opt", _optbench("tensorflow", "none")),
               _write(in_tmp, "vq", _vqvae(in_tmp, faces, "tensorflow", "none"))]
    # Two runs in each worker process: the second strategy's collectives must not meet the
    # first's.
    workers = _start_workers(in_tmp, _write(in_tmp, "opt-mw", _optbench("tensorflow",
                                                                         "multi_worker")),
                             _write(in_tmp, "vq-mw", _vqvae(in_tmp, faces, "tensorflow",
                                                            "multi_worker")))
    assert _train(["-m", "blogml", "train", *singles], in_tmp).returncode == 0
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(outputs)
    _assert_same_runs(in_tmp / "runs", [("opt", "opt-mw"), ("vq", "vq-mw")])
    # Only the chief wrote run dirs; the other worker's scratch dirs are gone.
    assert sorted(p.name for p in (in_tmp / "runs").iterdir()) == ["opt", "opt-mw", "vq",
                                                                    "vq-mw"]
    scratch = re.findall(r"(\S*blogml-worker-\w+): finished", outputs[1])
    assert len(scratch) == 2 and not any(Path(s).exists() for s in scratch), outputs[1]


@pytest.mark.slow
def test_killing_a_worker_fails_the_run_and_both_resume_it_to_the_end(in_tmp):
    values = _optbench("tensorflow", "multi_worker", steps_per_epoch=300, log_every=50,
                       eval_every=300, checkpoint_every=20)
    values["distribution"]["timeout"] = 60
    config = _write(in_tmp, "long", values)
    run = in_tmp / "runs/long"
    chief, worker = _start_workers(in_tmp, config, "--run-dir", "runs/long")
    deadline = time.monotonic() + 120
    while not (run / "checkpoints/last/checkpoint.h5").is_file():
        assert time.monotonic() < deadline and chief.poll() is None, chief.communicate()[0]
        time.sleep(0.1)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    output = chief.communicate(timeout=120)[0]
    assert chief.returncode == 1, output
    summary = _summary(run)
    assert summary["status"] == "failed"
    assert "task:1" in summary["message"] and summary["step"] < 300
    # Both workers restarted with --resume continue from the chief's last checkpoint and end
    # where one process running the whole way ends.
    workers = _start_workers(in_tmp, "--run-dir", "runs/long", "--resume")
    single = {**values, "distribution": {"strategy": "none"}, "run_dir": "runs/single"}
    assert _train(["-m", "blogml", "train", _write(in_tmp, "single", single)],
                  in_tmp).returncode == 0
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(outputs)
    assert f"resuming {run.relative_to(in_tmp)}" in outputs[0]
    assert _summary(run)["status"] == "finished" and _summary(run)["step"] == 300
    _assert_same_runs(in_tmp / "runs", [("single", "long")])


@pytest.mark.parametrize("backend, strategy, message", [
    ("jax", "mirrored", "mirrored needs backend: tensorflow (got backend: jax); set backend: "
                        "tensorflow, or a strategy for jax: data_parallel or none"),
    ("tensorflow", "data_parallel", "data_parallel needs backend: jax"),
    ("torch", "multi_worker", "a strategy for torch: none"),
])
def test_strategy_needs_its_backend(backend, strategy, message):
    _, issues = check_config(_optbench(backend, strategy), "x.yaml")
    assert [(i.path, message in i.message) for i in issues] == [("distribution.strategy", True)]


@pytest.mark.parametrize("strategy, optimizer, refused", [
    ("mirrored", {"name": "nadam", "ema": {"momentum": 0.9}}, True),
    ("multi_worker", {"name": "nadam", "gradient_accumulation_steps": 2}, True),
    ("mirrored", {"name": "nadam"}, False),  # no tricks: Keras's own Nadam, Keras's own step
    ("mirrored", {"name": "adam", "ema": {"momentum": 0.9}}, False),
    ("none", {"name": "nadam", "ema": {"momentum": 0.9}}, False),
])
def test_nadam_with_tricks_is_refused_under_a_tf_distribute_strategy(strategy, optimizer,
                                                                     refused):
    """A replica step applies the base's update rule per variable; Keras's Nadam advances
    its momentum schedule outside it, so that run's loss would be nan by step 2."""
    config = {**_optbench("tensorflow", strategy), "optimizer": optimizer}
    _, issues = check_config(config, "x.yaml")
    expected = [("optimizer.name", "nadam with derived tricks does not go with "
                                   f"distribution.strategy: {strategy}")] if refused else []
    assert [(i.path, i.message[:len(m)]) for i, (_, m) in zip(issues, expected)] == expected
    assert len(issues) == len(expected), [i.message for i in issues]


def test_a_worker_whose_study_cannot_start_leaves_no_scratch_dir(in_tmp, monkeypatch):
    from blogml.config.loader import LoadedConfig, dump_config
    from blogml.errors import RunDirError
    from blogml.runners.planning import plan_runs

    monkeypatch.setattr(tempfile, "tempdir", str(in_tmp / "tmp"))
    (in_tmp / "tmp").mkdir()
    cluster = {"worker": ["localhost:1", "localhost:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 1}}))
    worker, busy = (LoadedConfig(f"{name}.yaml", check_config(values, name)[0]) for name, values in
                    (("mw", _optbench("tensorflow", "multi_worker")),
                     ("busy", _optbench("tensorflow", "none"))))
    # `busy` was started by a process that still runs (this one): it cannot be resumed.
    run = in_tmp / "runs/busy"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(busy.values))
    (run / "summary.json").write_text(json.dumps({"status": "running", "pid": os.getpid(),
                                                  "host": socket.gethostname()}))
    with pytest.raises(RunDirError, match="is still running"):
        plan_runs([worker, busy], None, resume=True)
    assert list((in_tmp / "tmp").iterdir()) == []
