#!/usr/bin/env bash
# Issue 4's loop optimisations on a GPU machine, one command (about 5 minutes on an H100):
# cartpole-500k at 1 and 1024 seeds under each Config variant (scan_unroll, gae_method),
# then the best-known XLA flags on the baseline and the unrolled variant. Wheels for
# gymnax, gymnasium and farama-notifications in .whl/ (see device_run.sh).
# Writes <hardware>-optimisations*.json under $OUT (copy them to benchmarks/results/).
set -euo pipefail
source "$(dirname "$0")/device_setup.sh"

echo "== Config variants =="
python3 -m benchmarks.optimisations --num-seeds "${SEEDS:-1,1024}" --out "$OUT"

echo "== XLA command buffers (process-wide flag): loops captured too, then none at all =="
XLA_FLAGS="--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL" \
  python3 -m benchmarks.optimisations --num-seeds 1 --variants baseline,unroll8 --tag cmdbuf-while --out "$OUT" || true
XLA_FLAGS="--xla_gpu_enable_command_buffer=" \
  python3 -m benchmarks.optimisations --num-seeds 1 --variants baseline,unroll8 --tag cmdbuf-off --out "$OUT" || true
