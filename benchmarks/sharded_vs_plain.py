"""Single-device throughput of the sharded path (driver.sharded_run over a 1-device mesh,
what every run now takes) against the plain jit(vmap(train)) it replaced (driver.whole_run).

Both programs are compiled once per seed count, then called in turns (plain, sharded,
plain, ...) `--repeats` times each, so load from other work on a shared machine falls on
both alike; each call is timed alone (compile excluded) and every timing is kept.

    python -m benchmarks.sharded_vs_plain [--seeds 1,64] [--repeats 5] [--total-steps 20480]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from purejaxvpg.algo.prng import seed_keys
from purejaxvpg.host import driver, placement, rundir
from purejaxvpg.tools.bench import SCENARIOS
from purejaxvpg.tools.hardware import hardware, hardware_name, load_average


def timed(fn, *args) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def compare(config, num_seeds: int, repeats: int) -> dict:
    """Both paths at one seed count on the first device: steps/s of every call, and
    whether they give the same final returns."""
    agent = driver.prepare(config)
    keys = seed_keys(0, num_seeds)
    mesh = placement.mesh(1)
    key_data = placement.shard(placement.host_keys(keys), mesh)
    plain, plain_compile = driver.compile_timed(driver.whole_run(agent), keys)
    sharded, sharded_compile = driver.compile_timed(driver.sharded_run(agent, mesh), key_data)
    returns = (np.asarray(plain(keys)[1].episode_return[:, -1]),
               np.asarray(sharded(key_data)[1].episode_return[:, -1]))  # also the first (warm-up) calls
    seconds = {"plain": [], "sharded": []}
    for _ in range(repeats):
        seconds["plain"].append(timed(plain, keys))
        seconds["sharded"].append(timed(sharded, key_data))
    steps = num_seeds * config.num_updates * config.batch_size
    rates = {k: [steps / s for s in v] for k, v in seconds.items()}
    return {
        "num_seeds": num_seeds,
        "compile_seconds": {"plain": plain_compile, "sharded": sharded_compile},
        "run_seconds": seconds,
        "env_steps_per_second": rates,
        "median_env_steps_per_second": {k: statistics.median(v) for k, v in rates.items()},
        "sharded_over_plain_median": statistics.median(rates["sharded"]) / statistics.median(rates["plain"]),
        "final_returns_max_abs_difference": float(np.max(np.abs(returns[0] - returns[1]))),
    }


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,64")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--total-steps", type=int, default=4 * 128 * 40, help="per seed (default: 40 updates)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    config = dataclasses.replace(SCENARIOS["cartpole-500k"], total_steps=args.total_steps)
    hw = hardware()
    record = {"hardware": hw, "date": time.strftime("%Y-%m-%d"), "load_average_at_start": load_average(),
              "config": dataclasses.asdict(config), "repeats": args.repeats, "points": []}
    for n in (int(x) for x in args.seeds.split(",")):
        point = compare(config, n, args.repeats)
        record["points"].append(point)
        median = point["median_env_steps_per_second"]
        print(f"{n:>5} seeds: plain {median['plain']:>12,.0f}  sharded {median['sharded']:>12,.0f} steps/s "
              f"(median of {args.repeats}; sharded / plain {point['sharded_over_plain_median']:.3f})")
    record["load_average_at_end"] = load_average()
    path = args.out / f"{hardware_name(hw)}-sharded-vs-plain.json"
    rundir.write_json(path, record)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
