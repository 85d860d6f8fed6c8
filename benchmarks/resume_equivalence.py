"""Resume: the quickstart trained straight vs. stopped by SIGTERM part-way and resumed
with `blogml train CONFIG --resume` (target: final weights equal to float tolerance).

Both runs are subprocesses, as on a GPU box; the stop is a real signal, sent once the run
has logged `--stop-at` steps. Prints one JSON line with the largest absolute difference
over every model and optimizer variable.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from subprocess_cli import blogml

from blogml.runners import checkpoint as ckpt
from blogml.runners.events import read_events

REPO = Path(__file__).resolve().parent.parent


def interrupted_run(root: Path, stop_at: int) -> int:
    """Start `blogml train demo.yaml`, SIGTERM it after `stop_at` logged steps; the step
    it stopped at."""
    env = dict(os.environ, CI="true", TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen([sys.executable, "-m", "blogml", "train", "demo.yaml"], cwd=root,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = root / "resumed" / "metrics.jsonl"
    while process.poll() is None:
        events = read_events(metrics) if metrics.is_file() else []
        if events and events[-1]["step"] >= stop_at:
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.02)
    if process.wait() != 130:
        raise SystemExit(f"the run was not interrupted (exit {process.returncode})")
    return json.loads((root / "resumed" / "summary.json").read_text())["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stop-at", type=int, default=700, help="steps before the SIGTERM")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = yaml.safe_load((REPO / "configs/quickstart.yaml").read_text())
        config["train"]["log_every"] = 1
        config["run_dir"] = "resumed"
        (root / "demo.yaml").write_text(yaml.safe_dump(config))
        blogml("train", "demo.yaml", "--run-dir", "straight", cwd=root)
        stopped_at = interrupted_run(root, args.stop_at)
        blogml("train", "demo.yaml", "--resume", cwd=root)
        a = ckpt.load_checkpoint(root / "straight" / "checkpoints" / "last")
        b = ckpt.load_checkpoint(root / "resumed" / "checkpoints" / "last")
    difference = max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
                     for group in ("model", "optimizer")
                     for (_, x), (_, y) in zip(a.groups[group], b.groups[group]))
    print(json.dumps({
        "benchmark": "resume_equivalence",
        "stopped_at_step": stopped_at,
        "final_step": b.meta["loop"]["step"],
        "same_final_step": a.meta["loop"]["step"] == b.meta["loop"]["step"],
        "max_abs_weight_difference": difference,
        "target": "<= 1e-6",
        "meets_target": difference <= 1e-6,
    }))


if __name__ == "__main__":
    main()
