#!/usr/bin/env bash
# Issue 26, second GPU call: what the first (device_issue26.sh) left open. One command of about
# 9.5 minutes, each step under its own timeout inside one budget, most important first:
#   1. the loop variants (scan_unroll 8, with and without associative GAE) at 1 seed, where the program waits on
#      loop-iteration overhead (3% busy in h200-profile.json);
#   2. XLA command buffers that capture the while loops too, at 1 seed;
#   3. the loop variants at 1024 seeds;
#   4. the anchor at 256 seeds (the point the first call did not reach);
#   5. MinAtar, MLP (the preset's 256x256) vs CNN (MinAtar's reference network), 64 seeds,
#      $MINATAR_STEPS per seed, in what time is left (issue 25's rows and issue 26's).
# Wheels (gymnax, gymnasium, farama-notifications) in .whl/, the anchor in .anchor/purejaxrl
# (device_setup.sh, device_issue26.sh). Writes under $OUT: log.txt, the JSONs, and runs.tgz
# (the MinAtar run directories without checkpoints or metrics.csv).
# A dry run on the CPU: SCENARIO=smoke SEEDS_BIG=2 ANCHOR_SEEDS=2 MINATAR_SEEDS=2 \
#   MINATAR_STEPS=8192 MINATAR_EVAL=1 OUT=/tmp/out bash benchmarks/device_loops_minatar.sh
set -uo pipefail
source "$(dirname "$0")/device_setup.sh"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
HW=${HW:-gpu-h200}
SCENARIO=${SCENARIO:-cartpole-500k}
BUDGET=${BUDGET:-560}
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
step() {
  local limit=$1; shift
  local left=$((BUDGET - SECONDS)); [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 15 ]; then echo "!! skipped (budget spent): $*"; return; fi
  echo "== $(date +%T) +${SECONDS}s $* (limit ${limit}s)"; timeout "$limit" "$@" || echo "!! exit $? from: $*"
}
mkdir -p /tmp/opt /tmp/runs

step 110 python3 -m benchmarks.optimisations --scenario "$SCENARIO" --num-seeds 1 \
  --variants baseline,unroll8,assoc+unroll8 --tag 1-seed --out /tmp/opt
step 60 env XLA_FLAGS="--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL" python3 -m benchmarks.optimisations \
  --scenario "$SCENARIO" --num-seeds 1 --variants baseline,unroll8 --tag cmdbuf-while --out /tmp/opt
step 100 python3 -m benchmarks.optimisations --scenario "$SCENARIO" --num-seeds "${SEEDS_BIG:-1024}" \
  --variants baseline,unroll8 --tag many-seeds --out /tmp/opt
cp /tmp/opt/*.json "$OUT/" 2>/dev/null

step 75 python3 -m benchmarks.anchor --anchor-dir .anchor/purejaxrl --seeds "${ANCHOR_SEEDS:-256}" --repeats 2 \
  --total-steps "${ANCHOR_STEPS:-500000}" --out "$OUT/$HW-anchor-256.json"

for game in Breakout-MinAtar SpaceInvaders-MinAtar Asterix-MinAtar Freeway-MinAtar; do
  common=(--env-id "$game" --preset --num-seeds "${MINATAR_SEEDS:-64}" --total-steps "${MINATAR_STEPS:-2000000}"
          --eval-every "${MINATAR_EVAL:-48}" --no-progress --compile-cache off)
  step 70 python3 -m purejaxvpg train "${common[@]}" --out "/tmp/runs/$game-mlp"
  step 70 python3 -m purejaxvpg train "${common[@]}" --encoder cnn --cnn-channels 16 --hidden-sizes 128 \
    --out "/tmp/runs/$game-cnn"
done
tar czf "$OUT/runs.tgz" -C /tmp/runs --exclude=checkpoints --exclude=metrics.csv --exclude=.purejaxvpg.lock .
ls -la "$OUT"
echo "== $(date +%T) +${SECONDS}s done"
