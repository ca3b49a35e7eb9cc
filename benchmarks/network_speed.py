"""Env steps per second of each network, side by side in one process, at 1 and 64 seeds:
`mlp`, `cnn` and `gru` on MinAtar-sized images (Breakout-MinAtar, 10x10x4), `mlp` and `gru` on
CartPole-sized observations (4 numbers).

    python -m benchmarks.network_speed [--seeds 1,64] [--total-steps 10240] [--repeats 3]

One jitted, vmapped program per (variant, seeds), compiled once and timed apart from its
run (training only: final_eval off, as `purejaxvpg bench`); the repeats of every point are
interleaved so drifts of a shared machine hit each alike; the median is reported. On
Breakout every network uses MinAtar's reference sizes (hidden 128, relu; the CNN adds one
16-channel 3x3 convolution; the GRU puts 128 units between the flattened image and the hidden
layer); on CartPole the defaults (64, 64, tanh), the GRU of 64 units. 8 envs x 64 steps per
update. Writes benchmarks/results/<hardware>-network-speed.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import jax

import purejaxvpg as pjv
from purejaxvpg.host import provenance, rundir
from purejaxvpg.host.driver import compile_timed
from purejaxvpg.tools.hardware import hardware, hardware_name

VARIANTS = ("Breakout-MinAtar:mlp", "Breakout-MinAtar:cnn", "Breakout-MinAtar:gru", "CartPole-v1:mlp",
            "CartPole-v1:gru")


def config(variant: str, total_steps: int) -> pjv.Config:
    """ENV:NETWORK[:FIELD=INT]: e.g. CartPole-v1:gru:value_iters=1 (one integer field changed)."""
    env_id, network, *change = variant.split(":")
    common = dict(env_id=env_id, num_envs=8, num_steps=64, total_steps=total_steps, final_eval=False)
    common.update({k: int(v) for k, v in (c.split("=") for c in change)})
    if env_id == "CartPole-v1":
        return pjv.Config(**common, recurrent="gru" if network == "gru" else "none", recurrent_size=64)
    return pjv.Config(**common, encoder="cnn" if network == "cnn" else "mlp", cnn_channels=(16,),
                      recurrent="gru" if network == "gru" else "none", recurrent_size=128, hidden_sizes=(128,),
                      activation="relu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,64")
    parser.add_argument("--total-steps", type=int, default=10240)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="ENV:NETWORK[:FIELD=INT],...")
    parser.add_argument("--tag", default="", help="suffix of the output file")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    programs, points = {}, []
    for variant in variants:
        for n in seeds:
            c = config(variant, args.total_steps)
            keys = pjv.seed_keys(0, n)
            compiled, seconds = compile_timed(jax.jit(jax.vmap(pjv.make_train(c))), keys)
            programs[variant, n] = (compiled, keys, c)
            points.append({"variant": variant, "num_seeds": n, "compile_seconds": seconds, "run_seconds": []})
            print(f"{variant} x {n}: compiled in {seconds:.1f} s", flush=True)
    for _ in range(args.repeats):  # interleaved
        for point in points:
            compiled, keys, c = programs[point["variant"], point["num_seeds"]]
            start = time.perf_counter()
            jax.block_until_ready(compiled(keys))
            point["run_seconds"].append(time.perf_counter() - start)
            print(f"{point['variant']} x {point['num_seeds']}: {point['run_seconds'][-1]:.2f} s", flush=True)
    for point in points:
        c = programs[point["variant"], point["num_seeds"]][2]
        median = statistics.median(point["run_seconds"])
        point["env_steps_per_second"] = point["num_seeds"] * c.num_updates * c.batch_size / median
        print(f"{point['variant']:>20} x {point['num_seeds']:>3} seeds: compile {point['compile_seconds']:.1f} s, "
              f"run {median:.2f} s (median of {args.repeats}), {point['env_steps_per_second']:,.0f} env steps/s")
    record = {"config": {v: dataclasses.asdict(config(v, args.total_steps)) for v in variants},
              "points": points, "hardware": hardware(), "git_commit": provenance.git_commit(),
              "command": "python -m benchmarks.network_speed " + " ".join(argv or [])}
    path = args.out / f"{hardware_name(hardware())}-network-speed{'-' + args.tag if args.tag else ''}.json"
    rundir.write_json(path, record)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
