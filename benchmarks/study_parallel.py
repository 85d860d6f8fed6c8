"""A parallel study: `blogml bench optimizers configs/optbench/bases.yaml --jobs 2` ÷ the same
command without `--jobs`, wall time, on this machine.

Target: sequential ÷ parallel ≥ 1.6 on 2 cores, with identical `results.csv` numbers (every
column but the timings). Each side runs from a fresh folder; the two alternate over rounds
(sequential first in odd rounds, parallel first in even ones) so that a slow spell of the
machine hits both. The wall time of the parallel side includes starting Ray and each
worker's Keras import. Prints one JSON line.

    python benchmarks/study_parallel.py [--rounds 1] [--bench configs/optbench/bases.yaml]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 1.6
TIMINGS = ("wall_seconds", "steps_per_sec")  # the only columns allowed to differ


def run_bench(bench: Path, jobs: int | None) -> tuple[float, list[dict[str, str]]]:
    """Wall seconds of one bench from scratch, and its results.csv without the timings."""
    with tempfile.TemporaryDirectory(prefix="study-parallel-") as folder:
        command = [sys.executable, "-m", "blogml", "bench", "optimizers", str(bench),
                   *(["--jobs", str(jobs)] if jobs else [])]
        env = {**os.environ, "CI": "true", "TF_CPP_MIN_LOG_LEVEL": "3"}
        start = time.perf_counter()
        subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        (results,) = Path(folder).glob("runs/bench/*/results.csv")
        with open(results, newline="", encoding="utf-8") as handle:
            rows = [{k: v for k, v in row.items() if k not in TIMINGS}
                    for row in csv.DictReader(handle)]
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--bench", type=Path, default=REPO / "configs/optbench/bases.yaml")
    args = parser.parse_args()
    ratios, sequential, parallel, identical = [], [], [], True
    for round_ in range(args.rounds):
        order = [None, args.jobs] if round_ % 2 == 0 else [args.jobs, None]
        measured = {jobs: run_bench(args.bench, jobs) for jobs in order}
        (seq_seconds, seq_rows), (par_seconds, par_rows) = measured[None], measured[args.jobs]
        identical &= seq_rows == par_rows
        sequential.append(round(seq_seconds, 1))
        parallel.append(round(par_seconds, 1))
        ratios.append(seq_seconds / par_seconds)
    ratio = statistics.median(ratios)
    print(json.dumps({
        "benchmark": "study_parallel",
        "bench": str(args.bench.relative_to(REPO) if args.bench.is_relative_to(REPO)
                     else args.bench),
        "runs": len(seq_rows),
        "jobs": args.jobs,
        "sequential_seconds": sequential,
        "parallel_seconds": parallel,
        "speedup": round(ratio, 3),
        "speedup_all": [round(r, 3) for r in ratios],
        "identical_results": identical,
        "target_speedup": TARGET,
        "meets_target": ratio >= TARGET and identical,
        "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
