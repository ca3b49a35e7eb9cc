#!/usr/bin/env bash
# Issue 26 on a GPU machine, one command of about 8 minutes (each step under its own timeout,
# so a slow step costs only itself). The anchor travels in .anchor/purejaxrl (a copy of
# ../shared/anchors/purejaxrl in a folder .git/info/exclude ignores); gymnax, gymnasium,
# farama-notifications and purejaxvpg's own wheel in .whl/ (device_setup.sh). Writes under $OUT:
# log.txt, <hw>-anchor.json, <hw>-sharded-vs-plain.json, <hw>-throughput.json,
# <hw>-profile.json and <hw>-train-runs.json (the compile-cache pair and the 8192-seed call).
set -uo pipefail
source "$(dirname "$0")/device_setup.sh"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
HW=${HW:-gpu-h200}
STEPS=${STEPS:-500000}
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
BUDGET=${BUDGET:-530}  # seconds for the whole script: each step's limit is cut to what is left
step() {
  local limit=$1; shift
  local left=$((BUDGET - SECONDS)); [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 15 ]; then echo "!! skipped (budget spent): $*"; return; fi
  echo "== $(date +%T) +${SECONDS}s $* (limit ${limit}s)"; timeout "$limit" "$@" || echo "!! exit $? from: $*"
}
mkdir -p /tmp/runs /tmp/sharded /tmp/bench

# the anchor side by side at 1 and 1024 seeds: gives our run time and compile at both
step 170 python3 -m benchmarks.anchor --anchor-dir .anchor/purejaxrl --seeds ${ANCHOR_SEEDS:-1,1024} \
  --repeats ${REPEATS:-3} --total-steps $STEPS --out "$OUT/$HW-anchor.json"

# compile from the persistent cache: the same config in two fresh processes
CACHE=$(mktemp -d)
for run in first second; do
  step 60 python3 -m purejaxvpg train --env-id CartPole-v1 --num-seeds 1 --num-envs 4 --num-steps 128 \
    --value-iters 1 --total-steps $STEPS --compile-cache "$CACHE" --out /tmp/runs/cache-$run
done

# 8192 seeds in one call
step 150 python3 -m purejaxvpg train --env-id CartPole-v1 --num-seeds ${BIG:-8192} --num-envs 4 --num-steps 128 \
  --value-iters 1 --total-steps $STEPS --compile-cache off --out /tmp/runs/seeds-${BIG:-8192}

python3 - "$OUT/$HW-train-runs.json" <<'PY'
import json, pathlib, sys
runs = {p.parent.name: json.loads(p.read_text()) for p in pathlib.Path("/tmp/runs").glob("*/config.json")}
pathlib.Path(sys.argv[1]).write_text(json.dumps(
    {name: {k: r.get(k) for k in ("config", "results", "device", "versions", "code")} for name, r in runs.items()}, indent=1))
print({name: r["results"] for name, r in runs.items()})
PY

# the sharded path against the plain program (40 updates per seed)
step 90 python3 -m benchmarks.sharded_vs_plain --seeds ${SHARD_SEEDS:-1,1024} --repeats 3 --out /tmp/sharded
cp /tmp/sharded/*.json "$OUT/$HW-sharded-vs-plain.json" 2>/dev/null

# where the time goes: kernels per rollout iteration, device busy fraction
step 90 python3 -m benchmarks.program_profile --seeds ${PROFILE_SEEDS:-1,1024} --updates 40 --out "$OUT/$HW-profile.json"

# achieved FLOP/s against the measured matmul peak at 1024 seeds
step 120 python3 -m benchmarks.throughput --scenario cartpole-500k --num-seeds ${BENCH_SEEDS:-1024} --out /tmp/bench
cp /tmp/bench/*.json "$OUT/$HW-throughput.json" 2>/dev/null

# the anchor at 16 and 256 seeds, in what time is left
step 100 python3 -m benchmarks.anchor --anchor-dir .anchor/purejaxrl --seeds ${LATE_SEEDS:-16,256} --repeats 2 \
  --total-steps $STEPS --out "$OUT/$HW-anchor-16-256.json"
echo "== $(date +%T) +${SECONDS}s done"
