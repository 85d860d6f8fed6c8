"""NL2SQL demo: val logical-form accuracy of `configs/nl2sql/demo.yaml` and its wall time
(targets: LF >= 0.95 within 10 minutes on 2 CPU cores).

Runs what a newcomer types, as subprocesses in a temporary folder: `blogml data synth
nl2sql`, `blogml train configs/nl2sql/demo.yaml`, then `blogml predict` on the val questions
and `blogml score` of that file, which must give the run's own val metrics (the round trip
of the submission format). Prints one JSON line.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import yaml
from subprocess_cli import blogml

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = yaml.safe_load((REPO / "configs/nl2sql/demo.yaml").read_text())
        config["run_dir"] = "run"
        (root / "demo.yaml").write_text(yaml.safe_dump(config))
        start = time.perf_counter()
        blogml("data", "synth", "nl2sql", "--out", "data/nl2sql_demo", cwd=root)
        blogml("train", "demo.yaml", cwd=root)
        wall = time.perf_counter() - start
        summary = json.loads((root / "run" / "summary.json").read_text())
        val = root / "data/nl2sql_demo/val"
        blogml("predict", "run", "--input", str(val / "val.json"), "--output", "pred.json",
               cwd=root)
        rescored = json.loads(blogml("score", "--gold", str(val / "val.json"), "--pred",
                                     "pred.json", "--db", str(val / "val.db"), cwd=root))
        evaluated = json.loads(blogml("eval", "run", "--split", "val", cwd=root))
    print(json.dumps({
        "benchmark": "nl2sql_demo",
        "val_lf_accuracy_best": summary["best"]["value"],
        "best_step": summary["best"]["step"],
        "val_lf_accuracy_final": summary["final"]["val"]["lf_accuracy"],
        "val_ex_accuracy_best_checkpoint": evaluated["ex_accuracy"],
        "predict_then_score_lf": rescored["lf_accuracy"],
        "predict_round_trips": all(abs(rescored[k] - evaluated[k]) < 1e-12
                                   for k in ("lf_accuracy", "ex_accuracy", "score")),
        "synth_and_train_seconds": round(wall, 1),
        "steps_per_sec": summary["steps_per_sec"],
        "alignment_train": {k: summary["data"]["alignment"]["train"][k]
                            for k in ("verbatim", "normalised", "fuzzy", "failed")},
        "targets": {"val_lf_accuracy": 0.95, "seconds": 600},
    }))


if __name__ == "__main__":
    main()
