"""What `run_all.sh` records beside the figures: the machine and the Keras backend's devices.

Usage: `python device_info.py LINES` with one benchmark JSON line per line of LINES; prints
`{"date", "device", "benchmarks": [...]}` as one JSON document.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time


def gpus() -> list[str]:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def keras_devices() -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        devices = [str(d) for d in jax.devices()]
    elif backend == "tensorflow":
        import tensorflow as tf

        devices = [d.name for d in tf.config.list_physical_devices()]
    else:
        import torch

        devices = ["cpu", *(torch.cuda.get_device_name(i)
                            for i in range(torch.cuda.device_count()))]
    return {"keras": keras.__version__, "backend": backend, "devices": devices}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        results = [json.loads(line) for line in handle if line.strip()]
    print(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "device": {"host": platform.node(), "machine": platform.machine(),
                   "processor": platform.processor(), "cpu_count": os.cpu_count(),
                   "python": platform.python_version(), "gpus": gpus(), **keras_devices()},
        "benchmarks": results,
    }, indent=2))


if __name__ == "__main__":
    main()
