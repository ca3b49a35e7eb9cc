"""Where one update's time goes, on an accelerator or the CPU: kernels per environment step, loop trip
counts and how busy the device is, for "cartpole-500k" at a given seed count.

    python -m benchmarks.program_profile --seeds 1 --updates 40 --out F.json

Two readings of the same compiled program (the path every run takes, driver.sharded_run on
one device):

- static: the compiled HLO's while loops, each with its trip count and the instructions in
  its body that launch work (fusions, custom calls, copies; not tuples, parameters and
  get-tuple-elements), so "launches per rollout step" is read off the program, not guessed;
- traced: one call under `jax.profiler.trace`, read back with `jax.profiler.ProfileData`:
  the device's kernel events (count, summed duration, the ten costliest ops) against the
  call's wall time. Kernel time / wall time < 1 means the device waits on launches.

On the CPU the same reading comes from the CPU client's thunk events (one per executed HLO
op): how many run per rollout iteration and which ops take the time.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import glob
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from purejaxvpg.algo.prng import seed_keys
from purejaxvpg.host import driver, placement
from purejaxvpg.tools.bench import SCENARIOS

# instructions that move no data and launch nothing on their own
_FREE = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast", "after-all", "partition-id",
         "replica-id", "opt-barrier"}
_COMPUTATION = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?[\w.\-]+ = [^=]*? ([\w\-]+)\(")
_WHILE = re.compile(r"while\(.*body=%?([\w.\-]+)")
_TRIPS = re.compile(r'"known_trip_count":\{"n":"(\d+)"')


def hlo_loops(text: str) -> list[dict]:
    """Each while loop of a compiled HLO module: body name, trip count (None when XLA does not
    know it), launching instructions in its body and their kinds."""
    bodies: dict[str, collections.Counter] = {}
    current = None
    loops = []
    for line in text.splitlines():
        head = _COMPUTATION.match(line)
        if head and "=" not in line.split("{")[0].split("(")[0]:
            current = head.group(1)
            bodies[current] = collections.Counter()
            continue
        if current is None:
            continue
        op = _INSTRUCTION.match(line)
        if op and op.group(1) not in _FREE:
            bodies[current][op.group(1)] += 1
        loop = _WHILE.search(line)
        if loop:
            trips = _TRIPS.search(line)
            loops.append({"in": current, "body": loop.group(1), "trip_count": int(trips.group(1)) if trips else None})
    for loop in loops:
        kinds = bodies.get(loop["body"], collections.Counter())
        loop["launching_instructions"] = sum(kinds.values())
        loop["kinds"] = dict(kinds.most_common())
    return loops


_CONTAINER = re.compile(r"^(while|conditional|call)")  # CPU thunks that hold other thunks' time


def device_kernels(trace_dir: str) -> dict:
    """The executed ops of a `jax.profiler.trace` folder: an accelerator's kernel events (its
    "Stream" lines), else the CPU client's thunks (events with an `hlo_op`; loops and calls,
    which contain other thunks, are listed but not added to the busy time)."""
    from jax.profiler import ProfileData

    files = glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)
    if not files:
        return {"absent": "no xplane.pb written"}
    data = ProfileData.from_file(files[0])
    planes = [p for p in data.planes if p.name.startswith("/device:") and "CPU" not in p.name]
    on_cpu = not planes
    if on_cpu:
        planes = [p for p in data.planes if p.name == "/host:CPU"]
    lines, count, busy_ns = {}, 0, 0.0
    by_op: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    first, last = None, None
    for plane in planes:
        for line in plane.lines:
            events = list(line.events)
            lines[f"{plane.name} | {line.name}"] = len(events)
            # "XLA Ops" / "XLA Modules" lines repeat the streams' events; the python line is ours
            if ("Stream" not in line.name) if not on_cpu else not line.name.startswith("tf_XLA"):
                continue
            for event in events:
                stats = dict(event.stats)
                if on_cpu and "hlo_op" not in stats:
                    continue
                name = str(stats.get("hlo_op", event.name))
                by_op[name][0] += 1
                by_op[name][1] += event.duration_ns
                if on_cpu and _CONTAINER.match(name):
                    continue
                count += 1
                busy_ns += event.duration_ns
                first = event.start_ns if first is None else min(first, event.start_ns)
                last = event.end_ns if last is None else max(last, event.end_ns)
    top = sorted(((n, v) for n, v in by_op.items() if not (on_cpu and _CONTAINER.match(n))),
                 key=lambda kv: -kv[1][1])[:12]
    return {
        "where": "cpu thunks" if on_cpu else "accelerator kernels",
        "lines": lines,
        "kernels": count,
        "kernel_seconds": busy_ns / 1e9,
        "first_to_last_kernel_seconds": (last - first) / 1e9 if count else 0.0,
        "costliest_ops": [{"op": name, "launches": n, "seconds": ns / 1e9} for name, (n, ns) in top],
    }


def profile(num_seeds: int, updates: int) -> dict:
    """Static and traced readings of cartpole-500k at `num_seeds`, `updates` updates long."""
    base = SCENARIOS["cartpole-500k"]
    config = dataclasses.replace(base, total_steps=base.num_envs * base.num_steps * updates)
    agent = driver.prepare(config)
    mesh = placement.mesh(1)
    keys = placement.shard(placement.host_keys(seed_keys(0, num_seeds)), mesh)
    compiled, compile_s = driver.compile_timed(driver.sharded_run(agent, mesh), keys)
    loops = hlo_loops(compiled.as_text())
    jax.block_until_ready(compiled(keys))
    start = time.perf_counter()
    jax.block_until_ready(compiled(keys))
    untraced_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as where:
        start = time.perf_counter()
        with jax.profiler.trace(where):
            jax.block_until_ready(compiled(keys))
        traced_s = time.perf_counter() - start
        kernels = device_kernels(where)
    env_steps = config.num_updates * config.num_steps  # iterations of the rollout loop, all envs at once
    record = {
        "num_seeds": num_seeds,
        "config": dataclasses.asdict(config),
        "device_kind": jax.devices()[0].device_kind,
        "compile_seconds": compile_s,
        "run_seconds": untraced_s,
        "traced_run_seconds": traced_s,
        "rollout_iterations": env_steps,
        "seconds_per_rollout_iteration": untraced_s / env_steps,
        "while_loops": loops,
        "rollout_loop": max((loop for loop in loops if loop["trip_count"] == config.num_steps),
                            key=lambda loop: loop["launching_instructions"], default=None),
        "trace": kernels,
    }
    if kernels.get("kernels"):
        record["kernels_per_rollout_iteration"] = kernels["kernels"] / env_steps
        record["kernel_seconds_over_wall"] = kernels["kernel_seconds"] / traced_s
        record["mean_kernel_microseconds"] = 1e6 * kernels["kernel_seconds"] / kernels["kernels"]
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.program_profile", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1", help="comma-separated seed counts (default: 1)")
    parser.add_argument("--updates", type=int, default=40, help="updates per traced call (default: 40)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    records = []
    for n in [int(s) for s in args.seeds.split(",")]:
        record = profile(n, args.updates)
        records.append(record)
        print(f"{n} seeds: {record['seconds_per_rollout_iteration'] * 1e6:.1f} us per rollout iteration, "
              f"rollout body {record['rollout_loop'] and record['rollout_loop']['launching_instructions']} "
              f"launching instructions, kernels/iteration {record.get('kernels_per_rollout_iteration')}, "
              f"kernel time / wall {record.get('kernel_seconds_over_wall')}", flush=True)
    summary = {"jax": jax.__version__, "backend": jax.default_backend(), "points": records}
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1, default=float))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
