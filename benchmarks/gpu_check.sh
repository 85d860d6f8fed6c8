#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py: NL2SQL at BERT-base size with MFU, VQ-VAE images/s,
# two runs of a study sharing one GPU), on JAX, as one JSON line on stdout; nvidia-smi's
# view of the machine goes to stderr first. Arguments go to gpu_check.py (--smoke: tiny
# sizes, for a CPU; --peak-tflops T: a GPU not in its table; --workdir DIR: keep the logs).
#
# On a GPU box (CUDA 12 driver; TensorFlow not needed), from the repository root:
#   python -m venv .venv && . .venv/bin/activate
#   pip install -e ".[jax]" "jax[cuda12]"      # the CUDA JAX wheel (pulls its CUDA libs)
#   pip install -e ".[ray]"                     # part 3: blogml train --jobs 2
#   benchmarks/gpu_check.sh | tee gpu_check.json   # about 4 min on an H100/H200; under 8
# Then add the figures to benchmarks/RESULTS.md with the date, the GPU (nvidia-smi's name,
# driver, CUDA), jax/keras versions and the JSON line (steps/s, seq/s, MFU; images/s;
# sequential vs --jobs 2 wall times and the CUDA_VISIBLE_DEVICES each run saw).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export KERAS_BACKEND=jax
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX would take 75% of the GPU: two runs share it
export TF_CPP_MIN_LOG_LEVEL=3
if command -v nvidia-smi > /dev/null; then
  nvidia-smi >&2 || true
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >&2 || true
else
  echo "gpu_check.sh: no nvidia-smi on this machine" >&2
fi
cd "$here/.."
python benchmarks/gpu_check.py "$@"
