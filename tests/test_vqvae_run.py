"""`task: vqvae` and `task: vqvae_prior` end to end on synthetic faces in the real layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from blogml.cli.main import cli
from blogml.runners import checkpoint as ckpt
from blogml.runners.events import read_events
from blogml.runners.vqvae.runner import VQVAERunner
from blogml.runners.vqvae_prior.runner import VQVAEPriorRunner
from tests.conftest import assert_same_checkpoint, sigterm_at

pytestmark = [pytest.mark.slow, pytest.mark.backend_neutral]


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def vqvae_config(folder: Path, data: Path, name: str = "vq", **train) -> Path:
    config = {
        "task": "vqvae", "seed": 0, "run_dir": f"runs/{name}",
        "data": {"path": str(data)},
        "model": {"z_dim": 16, "num_codes": 32, "residual_blocks": 1,
                  "codebook": {"update": "ema", "restart_dead_after": 5}},
        "optimizer": {"name": "adam", "learning_rate": 2e-3},
        "train": {"epochs": 4, "batch_size": 16, "log_every": 1, "eval_every": 6,
                  "sample_count": 4, **train},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_training_improves_psnr_and_writes_samples_and_eval(in_tmp, faces):
    result = invoke("train", str(vqvae_config(in_tmp, faces)))
    assert result.exit_code == 0, result.output
    run = in_tmp / "runs" / "vq"
    val = [e for e in read_events(run / "metrics.jsonl") if e["event"] == "val"]
    assert [e["step"] for e in val] == [6, 12, 18, 24]
    assert val[-1]["psnr"] > val[0]["psnr"]
    assert 0 < val[-1]["codes_used"] <= 1 and 1 <= val[-1]["perplexity"] <= 32
    # Each sampling step (every validation, 6 steps, and the last) leaves both grids.
    assert {p.name for p in (run / "samples").iterdir()} == {
        f"{kind}_{step:07d}.png" for step in (6, 12, 18, 24)
        for kind in ("reconstructions", "interpolation")}
    grid = np.asarray(Image.open(run / "samples" / "reconstructions_0000024.png"))
    assert grid.shape == (2 * 64 + 2, 4 * 64 + 3 * 2, 3)  # originals over reconstructions
    scored = invoke("eval", str(run), "--split", "test")
    assert scored.exit_code == 0, scored.output
    metrics = json.loads(scored.output)
    assert metrics["split"] == "test" and metrics["psnr"] > 0
    # Per-image PSNR averaged is at least the PSNR of the mean MSE (Jensen, −log is convex).
    assert metrics["psnr"] >= 10 * np.log10(1 / metrics["mse"]) - 1e-6

    out = in_tmp / "predicted"
    predicted = invoke("predict", str(run), "--input", str(faces), "--output", str(out))
    assert predicted.exit_code == 0, predicted.output
    # One reconstruction per test image of the CelebA partition file (2: test), named
    # after it, and the overview.
    partition = (faces.parent / "src" / "list_eval_partition.txt").read_text().split("\n")
    test = [line.split()[0] for line in partition if line.endswith(" 2")]
    assert len(test) == 12
    assert {p.name for p in out.iterdir()} == {f"{Path(n).stem}.png" for n in test} | {
        "overview.png"}
    for name in test:
        assert np.asarray(Image.open(out / f"{Path(name).stem}.png")).shape == (64, 64, 3)


def test_resume_mid_epoch_equals_an_uninterrupted_run(in_tmp, faces, monkeypatch):
    config = vqvae_config(in_tmp, faces, epochs=3, eval_every=5)
    assert invoke("train", str(config), "--run-dir", "straight").exit_code == 0
    sigterm_at(monkeypatch, VQVAERunner, 8)  # 3 steps into the second epoch of 5
    assert invoke("train", str(config), "--run-dir", "resumed").exit_code == 130
    assert ckpt.load_checkpoint(in_tmp / "resumed/checkpoints/last").meta["loop"]["step"] == 8
    assert invoke("train", "--run-dir", "resumed", "--resume").exit_code == 0
    assert_same_checkpoint(in_tmp / "straight/checkpoints/last",
                           in_tmp / "resumed/checkpoints/last", atol=1e-5)


def test_prior_trains_on_the_codes_and_samples_images(in_tmp, faces, monkeypatch):
    assert invoke("train", str(vqvae_config(in_tmp, faces, epochs=2))).exit_code == 0
    encoded = []  # the splits the VQ-VAE encodes
    real_encode = VQVAEPriorRunner._encode

    def counting_encode(self, split):
        encoded.append(split)
        return real_encode(self, split)

    monkeypatch.setattr(VQVAEPriorRunner, "_encode", counting_encode)
    prior = {"task": "vqvae_prior", "seed": 0, "run_dir": "runs/prior",
             "data": {"vqvae_run": "runs/vq"},
             "model": {"hidden": 16, "layers": 1, "heads": 2, "dropout": 0.0},
             "optimizer": {"name": "adam", "learning_rate": 3e-3},
             "train": {"epochs": 3, "batch_size": 16, "log_every": 1, "eval_every": 5,
                       "sample_count": 4}}
    (in_tmp / "prior.yaml").write_text(yaml.safe_dump(prior))
    result = invoke("train", str(in_tmp / "prior.yaml"))
    assert result.exit_code == 0, result.output
    val = [e for e in read_events(in_tmp / "runs/prior/metrics.jsonl") if e["event"] == "val"]
    assert val[-1]["bits_per_code"] < np.log2(32)  # better than knowing nothing
    assert val[-1]["bits_per_code"] == pytest.approx(val[-1]["loss"] / np.log(2), rel=1e-4)
    # 96 training grids in batches of 16: 18 steps; samples with each validation and last.
    assert {p.name for p in (in_tmp / "runs/prior/samples").iterdir()} == {
        f"samples_{step:07d}.png" for step in (5, 10, 15, 18)}

    # Encoded once, into the prior run's own cache (the VQ-VAE run is only read): a second
    # prior run encodes into its own, and `blogml sample` reads the first run's cache:
    # nothing encoded, the file untouched.
    cache = in_tmp / "runs/prior/codes_best.h5"
    assert sorted(encoded) == ["train", "val"]
    assert not (in_tmp / "runs/vq/codes_best.h5").exists()
    before = cache.stat()
    encoded.clear()
    again = {**prior, "run_dir": "runs/prior2", "seed": 1,
             "train": {**prior["train"], "epochs": 1, "steps_per_epoch": 1, "sample_count": 1}}
    (in_tmp / "prior2.yaml").write_text(yaml.safe_dump(again))
    result = invoke("train", str(in_tmp / "prior2.yaml"))
    assert result.exit_code == 0, result.output
    assert sorted(encoded) == ["train", "val"]
    assert (in_tmp / "runs/prior2/codes_best.h5").is_file()
    encoded.clear()
    sampled = invoke("sample", "runs/prior", "-n", "6", "--output", "six.png")
    assert sampled.exit_code == 0, sampled.output
    assert encoded == []
    after = cache.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino, before.st_mtime_ns, before.st_size)
    grid = np.asarray(Image.open(in_tmp / "six.png"))
    assert grid.shape == (2 * 64 + 2, 3 * 64 + 2 * 2, 3)  # 6 images in a 3-column grid
