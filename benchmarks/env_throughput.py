"""Environment-stepping throughput: raw gymnax versus the purejaxvpg wrapper stack.

Random actions, `lax.scan` over `--steps` steps, `--num-envs` parallel environments, one
jitted call per point; after a warm-up call, the median of three calls is timed (compile
excluded). Both variants run side
by side in one process, so the wrapper overhead is measured, not estimated.

  python -m benchmarks.env_throughput --env-id CartPole-v1 --num-envs 1,256,65536

The wrapped stack is what the trainer uses with every option on:
EpisodeStatistics -> VecEnv -> NormalizeObservation -> ScaleReward.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from purejaxvpg import envs
from purejaxvpg.tools.hardware import hardware, hardware_name

STACKS = {
    "raw_gymnax": lambda env, n: envs.VecEnv(env, n),  # plain jax.vmap of gymnax's reset/step
    "episode_statistics": lambda env, n: envs.VecEnv(envs.EpisodeStatistics(env), n),
    "normalize_observation": lambda env, n: envs.NormalizeObservation(envs.VecEnv(env, n)),
    "scale_reward": lambda env, n: envs.ScaleReward(envs.VecEnv(env, n), 0.99),
    "wrapped": lambda env, n: envs.ScaleReward(
        envs.NormalizeObservation(envs.VecEnv(envs.EpisodeStatistics(env), n)), 0.99
    ),
}


def make_run(env_id: str, num_envs: int, num_steps: int, variant: str):
    """A jittable function key -> checksum that steps `num_envs` envs `num_steps` times."""
    env, params = envs.make(env_id)
    space = env.action_space(params)
    vec = STACKS[variant](env, num_envs)

    def run(key):
        key, key_reset = jax.random.split(key)
        _, state = vec.reset(key_reset, params)

        def step(carry, key):
            state, checksum = carry
            key_action, key_env = jax.random.split(key)
            action = jax.vmap(space.sample)(jax.random.split(key_action, num_envs))
            obs, state, reward, term, trunc, info = vec.step(key_env, state, action, params)
            # consume every output the trainer consumes, so none is optimised away
            checksum = checksum + reward.sum() + obs.sum() + info["final_observation"].sum()
            checksum = checksum + (term | trunc).sum()
            return (state, checksum), None

        (_, checksum), _ = jax.lax.scan(
            step, (state, jnp.float32(0.0)), jax.random.split(key, num_steps)
        )
        return checksum

    return run


def measure(env_id: str, num_envs: int, num_steps: int, variant: str) -> dict:
    run = jax.jit(make_run(env_id, num_envs, num_steps, variant))
    key = jax.random.key(0)
    start = time.perf_counter()
    compiled = run.lower(key).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(key))  # warm-up
    times = []
    for repeat in range(3):  # median of three timed calls
        start = time.perf_counter()
        jax.block_until_ready(compiled(jax.random.key(1 + repeat)))
        times.append(time.perf_counter() - start)
    run_s = sorted(times)[1]
    return {
        "variant": variant,
        "num_envs": num_envs,
        "num_steps": num_steps,
        "compile_seconds": compile_s,
        "run_seconds": run_s,
        "run_seconds_all": times,
        "env_steps_per_second": num_envs * num_steps / run_s,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="CartPole-v1")
    parser.add_argument("--num-envs", default="1,16,256,4096,65536", help="comma-separated")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--breakdown", action="store_true", help="also time each wrapper alone")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default: benchmarks/results/<device>-env-throughput.json)")
    args = parser.parse_args(argv)

    hw = hardware()
    rows = []
    print(f"{'envs':>9} {'raw steps/s':>14} {'wrapped steps/s':>16} {'overhead':>9}")
    for n in (int(x) for x in args.num_envs.split(",")):
        raw = measure(args.env_id, n, args.steps, "raw_gymnax")
        wrapped = measure(args.env_id, n, args.steps, "wrapped")
        overhead = 1.0 - wrapped["env_steps_per_second"] / raw["env_steps_per_second"]
        rows += [raw, wrapped]
        print(f"{n:>9} {raw['env_steps_per_second']:>14,.0f} {wrapped['env_steps_per_second']:>16,.0f} "
              f"{overhead:>8.1%}", flush=True)
        if args.breakdown:
            for variant in ("episode_statistics", "normalize_observation", "scale_reward"):
                alone = measure(args.env_id, n, args.steps, variant)
                rows.append(alone)
                cost = 1.0 - alone["env_steps_per_second"] / raw["env_steps_per_second"]
                print(f"{'':>9} {variant} alone: {alone['env_steps_per_second']:,.0f} steps/s ({cost:.1%})", flush=True)

    out = args.out or Path(__file__).parent / "results" / f"{hardware_name(hw)}-env-throughput-{args.env_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"env_id": args.env_id, "hardware": hw, "points": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
