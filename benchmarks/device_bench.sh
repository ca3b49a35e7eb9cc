#!/usr/bin/env bash
# Issue 4's throughput sweep on a GPU machine (CUDA JAX, flax, optax, chex there; gymnax,
# gymnasium and farama-notifications carried as wheels in .whl/, see device_run.sh).
# Writes <hardware>-wide-throughput.json (first, so it is there even if the sweep runs out
# of time), then <hardware>-throughput.json, each with its .png, under $OUT (copy them to
# benchmarks/results/). Every point records achieved steps/s next to the compute-bound
# estimate (measured matmul FLOP/s / XLA's FLOPs per env step) and the fraction.
set -euo pipefail
source "$(dirname "$0")/device_setup.sh"

echo "== issue 13: the sharded path on one device against the plain program it replaced =="
python3 -m benchmarks.sharded_vs_plain --seeds "${SHARDED_SEEDS:-1,1024}" --repeats 3 --total-steps 500000 --out "$OUT"

echo "== wide: CartPole-v1, 64 envs x 128 steps per seed, 1 to 1024 seeds =="
python3 -m benchmarks.throughput --scenario wide --num-seeds "${WIDE_SEEDS:-1,16,1024}" --out "$OUT"

echo "== every scenario, 1 to 8192 seeds =="
python3 -m benchmarks.throughput --num-seeds "${SEEDS:-1,16,256,1024,4096,8192}" --out "$OUT"
