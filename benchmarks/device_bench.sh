#!/usr/bin/env bash
# Issue 4's throughput sweep on a GPU machine (CUDA JAX, flax, optax, chex there; gymnax,
# gymnasium and farama-notifications carried as wheels in .whl/, see device_run.sh).
# Writes <hardware>-throughput.json and .png under $OUT (copy them to benchmarks/results/).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
python3 -m benchmarks.throughput --num-seeds "${SEEDS:-1,16,256,1024,4096,8192}" --out "${OUT:-/tmp/out}"
