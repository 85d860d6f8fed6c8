#!/usr/bin/env bash
# Every benchmark of README: Benchmarks, one after another, into one JSON file with the device they
# ran on:  benchmarks/run_all.sh [OUT.json]   (default: benchmarks/results.json)
# KERAS_BACKEND picks the backend (a GPU box with only JAX: KERAS_BACKEND=jax). A script
# that fails is recorded with its error and the others still run.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-$here/results.json}")
scripts=(cli_startup runner_overhead optimizer_overhead vqvae_input vqvae_train vqvae_demo
         bert_throughput nl2sql_demo resume_equivalence study_parallel)
lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
cd "$here"
for name in "${scripts[@]}"; do
  echo "benchmarks/$name.py ..." >&2
  start=$(date +%s)
  if result=$(python "$name.py" 2> >(tail -n 20 > "$lines.err")); then
    printf '%s\n' "$result" | tail -n 1 >> "$lines"
  else
    python -c 'import json, sys; print(json.dumps({"benchmark": sys.argv[1], "error": open(sys.argv[2]).read()[-2000:]}))' \
      "$name" "$lines.err" >> "$lines"
  fi
  echo "  $(( $(date +%s) - start )) s" >&2
done
rm -f "$lines.err"
python "$here/device_info.py" "$lines" > "$out"
echo "wrote $out" >&2
