"""Wall time of `blogml --help` (target < 0.3 s): it must not import TensorFlow/Keras.

Prints one JSON line: median over repeated runs, beside the bare interpreter start-up
measured the same way, so the figure can be read against the machine's own floor.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time


def median_seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(repeats: int = 15) -> None:
    blogml = shutil.which("blogml")
    command = [blogml, "--help"] if blogml else [sys.executable, "-m", "blogml", "--help"]
    median_seconds(command, 2)  # warm the file cache
    help_seconds = median_seconds(command, repeats)
    python_seconds = median_seconds([sys.executable, "-c", "pass"], repeats)
    print(json.dumps({
        "benchmark": "cli_startup",
        "command": " ".join(["blogml" if blogml else "python -m blogml", "--help"]),
        "help_seconds": round(help_seconds, 4),
        "python_startup_seconds": round(python_seconds, 4),
        "target_seconds": 0.3,
        "meets_target": help_seconds < 0.3,
        "repeats": repeats,
    }))


if __name__ == "__main__":
    main()
