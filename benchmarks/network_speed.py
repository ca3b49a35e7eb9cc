"""Env steps per second of each encoder, side by side in one process: `mlp` and `cnn` on
MinAtar-sized images (Breakout-MinAtar, 10x10x4), at 1 and 64 seeds.

    python -m benchmarks.network_speed [--seeds 1,64] [--total-steps 10240] [--repeats 3]

One jitted, vmapped program per (encoder, seeds), compiled once and timed apart from its
run (training only: final_eval off, as `purejaxvpg bench`); the repeats of every point are
interleaved so drifts of a shared machine hit each alike; the median is reported. Both
networks use MinAtar's reference sizes (hidden 128, relu; the CNN adds one 16-channel 3x3
convolution). Writes benchmarks/results/<hardware>-network-speed.json.
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

ENCODERS = ("mlp", "cnn")


def config(encoder: str, total_steps: int) -> pjv.Config:
    return pjv.Config(env_id="Breakout-MinAtar", encoder=encoder, cnn_channels=(16,), hidden_sizes=(128,),
                      activation="relu", num_envs=8, num_steps=64, total_steps=total_steps, final_eval=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,64")
    parser.add_argument("--total-steps", type=int, default=10240)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    programs, points = {}, []
    for encoder in ENCODERS:
        for n in seeds:
            c = config(encoder, args.total_steps)
            keys = pjv.seed_keys(0, n)
            compiled, seconds = compile_timed(jax.jit(jax.vmap(pjv.make_train(c))), keys)
            programs[encoder, n] = (compiled, keys, c)
            points.append({"encoder": encoder, "num_seeds": n, "compile_seconds": seconds, "run_seconds": []})
            print(f"{encoder} x {n}: compiled in {seconds:.1f} s", flush=True)
    for _ in range(args.repeats):  # interleaved
        for point in points:
            compiled, keys, c = programs[point["encoder"], point["num_seeds"]]
            start = time.perf_counter()
            jax.block_until_ready(compiled(keys))
            point["run_seconds"].append(time.perf_counter() - start)
            print(f"{point['encoder']} x {point['num_seeds']}: {point['run_seconds'][-1]:.2f} s", flush=True)
    for point in points:
        c = programs[point["encoder"], point["num_seeds"]][2]
        median = statistics.median(point["run_seconds"])
        point["env_steps_per_second"] = point["num_seeds"] * c.num_updates * c.batch_size / median
        print(f"{point['encoder']:>3} x {point['num_seeds']:>3} seeds: compile {point['compile_seconds']:.1f} s, "
              f"run {median:.2f} s (median of {args.repeats}), {point['env_steps_per_second']:,.0f} env steps/s")
    record = {"config": {e: dataclasses.asdict(config(e, args.total_steps)) for e in ENCODERS},
              "points": points, "hardware": hardware(), "git_commit": provenance.git_commit(),
              "command": "python -m benchmarks.network_speed " + " ".join(argv or [])}
    path = args.out / f"{hardware_name(hardware())}-network-speed.json"
    rundir.write_json(path, record)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
