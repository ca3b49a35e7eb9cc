#!/usr/bin/env bash
# MLP vs CNN on MinAtar (issue 25's rows): Breakout-MinAtar's preset (32 envs x 128 steps,
# entropy 0.01, relu) for 2M steps per seed, 16 seeds, with the preset's 256x256 MLP and with
# MinAtar's reference network (one 16-channel 3x3 convolution, then 128 units); an evaluation
# every 48 of 488 updates and the final one. Then the figure and the comparison:
#   bash benchmarks/minatar_runs.sh [OUT] [GAME]
# Not yet run to the end: on the 2-core CPU the MLP trained about 10k env steps/s at 16 seeds
# (48 of 488 updates in 5 min), so one network of one game is about 50 min there: a GPU job.
set -euo pipefail
OUT=${1:-benchmarks/results/cpu-2core-minatar-16}
GAME=${2:-Breakout-MinAtar}
common=(--env-id "$GAME" --preset --num-seeds 16 --total-steps 2000000 --eval-every 48 --no-progress)
[ -f "$OUT/$GAME-mlp/metrics.npz" ] || purejaxvpg train "${common[@]}" --out "$OUT/$GAME-mlp"
[ -f "$OUT/$GAME-cnn/metrics.npz" ] || purejaxvpg train "${common[@]}" --encoder cnn --cnn-channels 16 \
  --hidden-sizes 128 --out "$OUT/$GAME-cnn"
purejaxvpg plot "mlp=$OUT/$GAME-mlp" "cnn=$OUT/$GAME-cnn" --out "$OUT/$GAME.png" --force
purejaxvpg compare "mlp=$OUT/$GAME-mlp" "cnn=$OUT/$GAME-cnn" --out "$OUT/$GAME-compare"
