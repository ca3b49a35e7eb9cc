#!/usr/bin/env bash
# MLP against GRU on the two memory tasks (issue 25's rows), on the CPU: MemoryCue-known (a cue
# on step 0, the choice on step 3) and gymnax's MemoryChain-bsuite (the context on step 0, the
# choice on step 5: +1 right, -1 wrong). 16 seeds each, 8 envs x 7 steps per update (7: most
# episodes span two rollouts, so the GRU's state must cross them), 300 updates (16,800 steps per
# seed), policy_lr 3e-3, an evaluation of 64 greedy and stochastic episodes every 30 updates and
# at the end. The GRU: 32 units after a 32-unit dense layer, then the same (64, 64) layers.
#   bash benchmarks/memory_runs.sh [OUT]
#   python -m benchmarks.network_table --dir OUT --envs MemoryCue-known,MemoryChain-bsuite --networks mlp,gru
set -euo pipefail
OUT=${1:-benchmarks/results/cpu-2core-memory-16}
for env in MemoryCue-known MemoryChain-bsuite; do
  common=(--env-id "$env" --num-seeds 16 --num-envs 8 --num-steps 7 --total-steps 16800 --policy-lr 0.003
          --eval-every 30 --eval-episodes 64 --no-progress)
  [ -f "$OUT/$env-mlp/metrics.npz" ] || purejaxvpg train "${common[@]}" --out "$OUT/$env-mlp"
  [ -f "$OUT/$env-gru/metrics.npz" ] || purejaxvpg train "${common[@]}" --recurrent gru --recurrent-size 32 \
    --out "$OUT/$env-gru"
done
