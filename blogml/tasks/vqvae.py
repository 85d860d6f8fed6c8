"""Config schema of `task: vqvae`."""

from __future__ import annotations

from typing import Any

from blogml.config.common import sample_keys, task_schema
from blogml.config.schema import ExistingPath, Float, Int, Issues, Section, Str, join

DATA = Section({
    "path": ExistingPath(doc="HDF5 image cache (uint8 NHWC per split)",
                         hint="make it with `blogml data prepare celeba --src DIR --out FILE.h5` "
                              "(or `blogml data synth celeba` for demo images)"),
    "train_split": Str("train", "split to train on"),
    "val_split": Str("val", "split to validate on"),
}, "images from `blogml data prepare celeba`")

MODEL = Section({
    "z_dim": Int(128, "channels of the encoder output and of each code", min=1),
    "num_codes": Int(64, "codebook size K (the seed: 64; 512 is common)", min=2),
    "beta": Float(0.25, "commitment weight β", min=0.0),
    "residual_blocks": Int(None, "residual blocks in encoder and decoder; null: log2(size) − 4",
                           min=0),
    "codebook": Section({
        "update": Str("loss", "how the codebook learns: by the codebook loss, or by moving "
                              "averages of the encoder outputs", choices=["loss", "ema"]),
        "decay": Float(0.99, "EMA decay γ", min=0.0, max=1.0),
        "epsilon": Float(1e-5, "Laplace smoothing of the EMA cluster sizes", min=0.0,
                         min_exclusive=True),
        "restart_dead_after": Int(None, "re-initialise codes unused for this many steps "
                                        "(EMA only)", min=1),
    }, "codebook learning"),
}, "VQ-VAE")

METRICS = ["loss", "mse", "psnr", "perplexity", "codes_used", "commitment"]


def _check_codebook(config: dict[str, Any], path: str, issues: Issues) -> None:
    codebook = config["model"]["codebook"]
    if codebook["restart_dead_after"] is not None and codebook["update"] != "ema":
        issues.add(join(path, "model.codebook.restart_dead_after"),
                   "needs model.codebook.update: ema (a codebook learned by the loss is a "
                   "trainable weight, which a restart inside the forward pass cannot set)")


SCHEMA = task_schema(
    "vqvae", data=DATA, model=MODEL, metrics=METRICS, monitor="val_psnr", monitor_mode="max",
    extra_train=sample_keys(8, 64),
    validators=[_check_codebook])
