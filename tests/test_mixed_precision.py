"""`train.mixed_precision` (README: Mixed precision): every task trains under mixed_float16 and
mixed_bfloat16 without NaN, computes in half precision with float32 variables and outputs,
records the policy in summary.json, and keeps derived tricks, checkpoints and resume exact."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from blogml.cli.main import cli
from blogml.optimizers import build_optimizer
from blogml.runners import checkpoint as ckpt
from blogml.runners import precision
from blogml.runners.building import trained_runner
from blogml.runners.events import read_events
from blogml.runners.nl2sql.features import INPUT_NAMES
from blogml.runners.optbench.runner import OptbenchRunner
from tests.conftest import assert_same_checkpoint, sigterm_at, write_config
from tests.reference_optimizers import Reference
from tests.test_nl2sql_run import nl2sql_config
from tests.test_vqvae_run import vqvae_config

pytestmark = [pytest.mark.backend_neutral]

POLICY = {False: "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
COMPUTE = {False: "float32", "float16": "float16", "bfloat16": "bfloat16"}
TRICKS = {"gradient_accumulation_steps": 2, "lookahead": {"k": 2, "alpha": 0.5},
          "ema": {"momentum": 0.9}}


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def dtype(tensor: Any) -> str:
    return keras.backend.standardize_dtype(tensor.dtype)


def finished(run: Path, setting: Any) -> dict:
    """summary.json of a finished run, checked: its policy, loss scale and finite losses."""
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished", summary["message"]
    assert summary["precision"]["policy"] == POLICY[setting]
    saved = dict(ckpt.load_checkpoint(run / "checkpoints" / "last").groups["optimizer"])
    if setting == "float16":  # the loss scale is optimizer state, so checkpoints hold it
        assert summary["precision"]["loss_scale"] == float(
            saved["loss_scale_optimizer/dynamic_scale"]) > 0
    else:
        assert summary["precision"]["loss_scale"] is None
        assert not any("loss_scale" in path for path in saved)
    losses = [e["loss"] for e in read_events(run / "metrics.jsonl") if e["event"] == "train"]
    assert losses and all(math.isfinite(loss) for loss in losses)
    return summary


def assert_built_with(model: keras.Model, setting: Any, half: keras.layers.Layer) -> None:
    """Float variables all float32; `half` computes in the policy's dtype; a loss-scaling
    optimizer exactly under float16."""
    assert model.dtype_policy.name == POLICY[setting]
    assert half.compute_dtype == COMPUTE[setting]
    assert {v.dtype for v in model.variables if "float" in v.dtype} == {"float32"}
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (setting == "float16")


def rebuilt(run: Path, setting: Any) -> Any:
    """The run rebuilt as eval/predict/sample do, from its last checkpoint; the global
    policy is float32 again afterwards."""
    runner, _ = trained_runner(str(run), "last")
    assert keras.config.dtype_policy().name == "float32"
    if setting == "float16":
        assert float(keras.ops.convert_to_numpy(runner.model.optimizer.dynamic_scale)) == \
            json.loads((run / "summary.json").read_text())["precision"]["loss_scale"]
    return runner


def apply(optimizer: keras.optimizers.Optimizer, gradient: np.ndarray,
          variables: list[keras.Variable]) -> None:
    """One update as Keras's trainers make it: stateless on JAX (whose trainer does so, and
    where the wrapper's stateful `apply` cannot run eagerly), in place elsewhere."""
    grads = [keras.ops.convert_to_tensor(gradient)]
    if keras.backend.backend() != "jax":
        optimizer.apply(grads, variables)
        return
    values, state = optimizer.stateless_apply([v.value for v in optimizer.variables], grads,
                                              [v.value for v in variables])
    for variable, value in zip([*variables, *optimizer.variables], [*values, *state]):
        variable.assign(value)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float32"])
def test_float16_on_a_jax_cpu_is_warned_of(policy, caplog):
    from blogml.runners.precision import warn_of_float16_on_a_jax_cpu

    warn_of_float16_on_a_jax_cpu(policy)
    on_a_jax_cpu = keras.backend.backend() == "jax" and all(
        d.startswith("cpu") for d in keras.distribution.list_devices())
    warned = [r.message for r in caplog.records if "float16 on a CPU under JAX" in r.message]
    assert len(warned) == (policy == "mixed_float16" and on_a_jax_cpu)


def scale_of(optimizer: keras.optimizers.LossScaleOptimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.dynamic_scale))


def test_derived_tricks_apply_unchanged_under_loss_scaling():
    """The LossScaleOptimizer hands the unscaled gradients to the derived optimizer, so
    accumulation, Lookahead and EMA make the same updates as without it (the scale, a power
    of two, divides exactly); an overflowing micro-batch is skipped (left out of the
    accumulation) and halves the scale; the EMA weights for evaluation are reached through
    the wrapper. Both are checked against the NumPy reference of tests/reference_optimizers.py."""
    config = {"name": "adam", "learning_rate": 0.1, **TRICKS}
    start = np.array([1.0, -2.0], np.float32)
    plain, wrapped = ([keras.Variable(start, name="w")] for _ in range(2))
    reference = build_optimizer(config)
    numpy_reference = Reference({"w": start}, **config)
    scaled = keras.optimizers.LossScaleOptimizer(build_optimizer(config))
    for optimizer, variables in ((reference, plain), (scaled, wrapped)):
        optimizer.build(variables)
    rng = np.random.default_rng(0)
    for micro_batch in range(7):
        grad = rng.standard_normal(2).astype(np.float32)
        if micro_batch == 3:  # mid-cycle: the update then averages micro-batches 2 and 3
            apply(scaled, np.array([np.inf, 1.0], np.float32), wrapped)
            assert scale_of(scaled) == scaled.initial_scale / 2
        apply(reference, grad, plain)
        numpy_reference.step({"w": grad.astype(np.float64)})
        apply(scaled, grad * scale_of(scaled), wrapped)
    np.testing.assert_allclose(wrapped[0].numpy(), plain[0].numpy(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(plain[0].numpy(), numpy_reference.params["w"], atol=1e-6)
    # 7 finite micro-batches in pairs: 3 updates; the overflowing one counts nowhere.
    assert int(scaled.iterations) == int(reference.iterations) == numpy_reference.updates == 3
    assert scale_of(scaled) == 2.0 ** 14  # halved once, never doubled (2000 good steps)
    assert int(keras.ops.convert_to_numpy(scaled.step_counter)) == 4  # finite since the skip
    for a, b in zip(reference.variables, scaled.inner_optimizer.variables):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=0, atol=1e-7)
    raw = wrapped[0].numpy()
    with precision.base_optimizer(scaled).evaluation_weights():
        averaged = wrapped[0].numpy()
    np.testing.assert_allclose(averaged, numpy_reference.ema_weights()["w"], atol=1e-6)
    assert np.abs(averaged - raw).max() > 1e-2  # the EMA is not the current weights
    np.testing.assert_array_equal(wrapped[0].numpy(), raw)  # and they come back after


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["float16", "bfloat16"])
def test_optbench_with_derived_tricks(in_tmp, setting):
    config = write_config(in_tmp, optimizer={"name": "adam", "learning_rate": 1e-2, **TRICKS},
                          train={"epochs": 2, "steps_per_epoch": 8, "eval_every": 8,
                                 "mixed_precision": setting})
    result = invoke("train", str(config))
    assert result.exit_code == 0, result.output
    run = in_tmp / "runs" / "tiny"
    summary = finished(run, setting)
    runner = rebuilt(run, setting)
    model = runner.model
    assert_built_with(model, setting, model.get_layer("dense_0"))
    features = next(runner.eval_batches("val"))[0]
    assert dtype(model.predict_on_batch(features)) == "float32"
    # 16 micro-batches, accumulated in pairs; under float16 each overflowing micro-batch is
    # skipped (left out of the pairs) and halves the scale from 2^15 (no doubling before 2000
    # good steps), so the scale tells how many were skipped.
    skipped = 0
    if setting == "float16":
        skipped = 15 - math.log2(summary["precision"]["loss_scale"])
        assert skipped == int(skipped) and 0 <= skipped < 16
    assert int(model.optimizer.iterations) == (16 - int(skipped)) // 2
    # Evaluation uses the bias-corrected EMA that the derived optimizer keeps, found through
    # the loss-scale wrapper, and puts the trained weights back afterwards.
    kernel = model.get_layer("logits").kernel
    derived = precision.base_optimizer(model.optimizer)
    position = [v.path for v in model.trainable_variables].index(kernel.path)
    average = keras.ops.convert_to_numpy(derived.average_weights()[position])
    raw = kernel.numpy()
    with runner.evaluation_weights():
        np.testing.assert_array_equal(kernel.numpy(), average)
    assert np.abs(average - raw).max() > 1e-3
    np.testing.assert_array_equal(kernel.numpy(), raw)


@pytest.mark.slow
def test_policy_does_not_leak_into_the_next_run(in_tmp):
    half = write_config(in_tmp, "half", train={"epochs": 1, "steps_per_epoch": 4,
                                               "mixed_precision": "float16"})
    full = write_config(in_tmp, "full", train={"epochs": 1, "steps_per_epoch": 4})
    result = invoke("train", str(half), str(full))
    assert result.exit_code == 0, result.output
    finished(in_tmp / "runs" / "half", "float16")
    finished(in_tmp / "runs" / "full", False)
    model = rebuilt(in_tmp / "runs" / "full", False).model
    assert_built_with(model, False, model.get_layer("dense_0"))


@pytest.mark.slow
def test_resume_under_float16_equals_an_uninterrupted_run(in_tmp, monkeypatch):
    config = write_config(in_tmp, model={"hidden_units": [16], "dropout": 0.0},
                          optimizer={"name": "adam", "learning_rate": 1e-2, **TRICKS},
                          train={"epochs": 2, "steps_per_epoch": 6, "eval_every": 4,
                                 "mixed_precision": "float16"})
    assert invoke("train", str(config), "--run-dir", "straight").exit_code == 0
    sigterm_at(monkeypatch, OptbenchRunner, 9)  # mid-epoch, mid accumulation cycle
    assert invoke("train", str(config), "--run-dir", "resumed").exit_code == 130
    assert invoke("train", "--run-dir", "resumed", "--resume").exit_code == 0
    # The optimizer group includes the loss scale and its step counter.
    assert_same_checkpoint(in_tmp / "straight/checkpoints/last",
                           in_tmp / "resumed/checkpoints/last", atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("vqvae_setting, prior_setting",
                         [("float16", "bfloat16"), ("bfloat16", "float16")])
def test_vqvae_and_prior(in_tmp, faces, vqvae_setting, prior_setting):
    """Different policies for the VQ-VAE and its prior: the prior builds the VQ-VAE inside
    its own setup, and each must keep its own."""
    vqvae = vqvae_config(in_tmp, faces, epochs=1, mixed_precision=vqvae_setting)
    assert invoke("train", str(vqvae)).exit_code == 0
    finished(in_tmp / "runs/vq", vqvae_setting)
    runner = rebuilt(in_tmp / "runs/vq", vqvae_setting)
    model = runner.model
    assert_built_with(model, vqvae_setting, model.encoder.get_layer("down0"))
    assert model.quantizer.compute_dtype == "float32"  # distances and EMA statistics
    out = model(next(runner.eval_batches("val"))[0])
    assert {k: dtype(v) for k, v in out.items() if k != "codes"} == \
        {"reconstruction": "float32", "z": "float32", "e": "float32"}

    prior = {"task": "vqvae_prior", "seed": 0, "run_dir": "runs/prior",
             "data": {"vqvae_run": "runs/vq"},
             "model": {"hidden": 16, "layers": 1, "heads": 2, "dropout": 0.1},
             "optimizer": {"name": "adam", "learning_rate": 3e-3},
             "train": {"epochs": 1, "batch_size": 16, "log_every": 1, "sample_count": 4,
                       "mixed_precision": prior_setting}}
    (in_tmp / "prior.yaml").write_text(yaml.safe_dump(prior))
    result = invoke("train", str(in_tmp / "prior.yaml"))
    assert result.exit_code == 0, result.output
    finished(in_tmp / "runs/prior", prior_setting)
    runner = rebuilt(in_tmp / "runs/prior", prior_setting)
    assert_built_with(runner.model, prior_setting, runner.model.get_layer("block0_ffn1"))
    assert runner.vqvae.model.dtype_policy.name == POLICY[vqvae_setting]
    assert runner.model.output.dtype == "float32"
    # The prior sampled (under its policy) and the VQ-VAE decoded at the end of training.
    assert (in_tmp / "runs/prior/samples/samples_0000006.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["float16", "bfloat16"])
def test_nl2sql(in_tmp, demo_data, setting):
    result = invoke("train", str(nl2sql_config(in_tmp, demo_data, epochs=1,
                                               mixed_precision=setting)))
    assert result.exit_code == 0, result.output
    finished(in_tmp / "runs/nl", setting)
    runner = rebuilt(in_tmp / "runs/nl", setting)
    layer = runner.model.encoder.get_layer("layer_0")
    assert_built_with(runner.model, setting, layer.query)
    inputs = runner.train_features.inputs
    outputs = runner.model({k: inputs[k][:2] for k in INPUT_NAMES})
    assert {k: dtype(v) for k, v in outputs.items()} == dict.fromkeys(
        ("conn", "agg", "op", "link"), "float32")
