#!/usr/bin/env bash
# The README's training command on a GPU machine that has CUDA JAX, flax, optax and chex but
# no network: gymnax and gymnasium travel as wheels in .whl/ (see benchmarks/README.md).
# Writes each run's config.json (timings, device, versions) under $OUT.
set -euo pipefail
source "$(dirname "$0")/device_setup.sh"
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"

echo "== README training command: 8 seeds of CartPole-v1, defaults =="
python3 -m purejaxvpg train --env-id CartPole-v1 --num-seeds 8 --out "$OUT/readme-train-8-seeds"

echo "== the same defaults, 1024 seeds =="
python3 -m purejaxvpg train --env-id CartPole-v1 --num-seeds 1024 --out "$OUT/defaults-1024-seeds"

echo "== reference config cartpole-500k (4 envs x 128 steps, value_iters 1), 1 and 1024 seeds =="
for n in 1 1024; do
  python3 -m purejaxvpg train --env-id CartPole-v1 --num-seeds $n --num-envs 4 --num-steps 128 \
    --value-iters 1 --out "$OUT/cartpole-500k-$n-seeds"
done
