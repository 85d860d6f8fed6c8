"""VQ-VAE demo: `configs/vqvae/demo.yaml` on synthetic faces, as a newcomer runs it
(targets: val PSNR rising; at least 50 % of the codes in use with EMA + restarts).

`blogml data synth celeba`, `blogml data prepare celeba` and `blogml train` as subprocesses
in a temporary folder; the figures come from the run's metrics.jsonl. Prints one JSON line.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import yaml
from subprocess_cli import blogml

from blogml.runners.events import read_events

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = yaml.safe_load((REPO / "configs/vqvae/demo.yaml").read_text())
        config["run_dir"] = "run"
        (root / "demo.yaml").write_text(yaml.safe_dump(config))
        start = time.perf_counter()
        blogml("data", "synth", "celeba", "--out", "data/celeba_demo", cwd=root)
        blogml("data", "prepare", "celeba", "--src", "data/celeba_demo", "--out",
               config["data"]["path"], "--size", "64", cwd=root)
        blogml("train", "demo.yaml", cwd=root)
        wall = time.perf_counter() - start
        val = [e for e in read_events(root / "run" / "metrics.jsonl") if e["event"] == "val"]
    psnr = [e["psnr"] for e in val]
    print(json.dumps({
        "benchmark": "vqvae_demo",
        "val_psnr_first": round(psnr[0], 3),
        "val_psnr_last": round(psnr[-1], 3),
        "val_psnr_best": round(max(psnr), 3),
        "psnr_rising": psnr[-1] > psnr[0],
        "codes_used_last": round(val[-1]["codes_used"], 4),
        "num_codes": config["model"]["num_codes"],
        "meets_target": psnr[-1] > psnr[0] and val[-1]["codes_used"] >= 0.5,
        "validations": len(val),
        "synth_prepare_train_seconds": round(wall, 1),
    }))


if __name__ == "__main__":
    main()
