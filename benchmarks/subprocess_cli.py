"""`blogml ARGS` as a newcomer types it, for the benchmarks that time whole demo runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def blogml(*args: str, cwd: Path) -> str:
    """Run the CLI in a subprocess (no progress bars); its stdout, or exit with its stderr."""
    env = dict(os.environ, CI="true", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "blogml", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"blogml {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout
