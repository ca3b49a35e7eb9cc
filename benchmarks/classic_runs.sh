#!/usr/bin/env bash
# The classic-control results (docs/results.md): each preset, 64 seeds, 20 in-run greedy /
# stochastic evaluations and the final one, as run directories under $OUT; then the
# figures, made by `purejaxvpg compare` and `purejaxvpg plot` from those directories.
#   bash benchmarks/classic_runs.sh [OUT]        (about an hour on a 2-core CPU)
# MountainCar-v0 and MountainCarContinuous-v0 use base seed 1: their presets were chosen by
# probes on base seed 0 (docs/results.md).
set -euo pipefail
OUT=${1:-benchmarks/results/cpu-2core-classic-64}
mkdir -p "$OUT"
for env in CartPole-v1 Acrobot-v1 MountainCar-v0 Pendulum-v1 MountainCarContinuous-v0 Catch-bsuite; do
  seed=0
  case $env in MountainCar*) seed=1 ;; esac
  if [ -f "$OUT/$env/metrics.npz" ]; then echo "$env: done already"; continue; fi
  updates=$(python -c "import purejaxvpg as pjv; print(pjv.Config.preset('$env').num_updates)")
  echo "== $env: 64 seeds, base seed $seed, an evaluation every $((updates / 20)) of $updates updates"
  purejaxvpg train --env-id "$env" --preset --num-seeds 64 --seed "$seed" --eval-every $((updates / 20)) \
    --no-progress --out "$OUT/$env"
done
