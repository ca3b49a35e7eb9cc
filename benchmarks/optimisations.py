"""Which loop optimisations pay off: one bench scenario under each variant, side by side.

    python -m benchmarks.optimisations [--scenario cartpole-500k] [--num-seeds 1,1024] [--variants ...]

Variants (all give the same results up to float rounding, tested on the CPU):
  baseline      one loop iteration per rollout step, GAE step and value step
  unrollK       Config.scan_unroll = K: K steps per loop iteration
  associative   Config.gae_method = "associative": GAE as a parallel prefix, no loop
  assoc+unrollK both
XLA flags (e.g. command buffers) are process-wide: run this script again under
`XLA_FLAGS=...` and `--tag` to compare them. Every variant is measured by bench.measure
(compile, a first call, a timed second call) in one process, so all points share the
machine state. Writes benchmarks/results/<hardware>-optimisations[-TAG].json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
from pathlib import Path

from purejaxvpg.tools import bench
from purejaxvpg.tools.hardware import hardware, hardware_name

DEFAULT_VARIANTS = "baseline,unroll4,unroll8,unroll16,associative,assoc+unroll8"


def variant(config, name: str):
    """The config of one named variant."""
    changes = {}
    for part in name.split("+"):
        if part == "baseline":
            continue
        if part in ("associative", "assoc"):
            changes["gae_method"] = "associative"
        elif match := re.fullmatch(r"unroll(\d+)", part):
            changes["scan_unroll"] = int(match.group(1))
        else:
            raise ValueError(f"variants: unknown {part!r} (baseline, unrollK, associative, assoc+unrollK)")
    return dataclasses.replace(config, **changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="cartpole-500k", choices=sorted(bench.SCENARIOS))
    parser.add_argument("--preset", dest="scenario", choices=sorted(bench.SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--num-seeds", default="1,1024")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS)
    parser.add_argument("--tag", default="", help="suffix of the output file (e.g. the XLA flags tried)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    base = bench.SCENARIOS[args.scenario]
    names = args.variants.split(",")
    configs = {name: variant(base, name) for name in names}  # bad names fail before compiling
    seeds = [int(x) for x in args.num_seeds.split(",")]
    record = {"scenario": args.scenario, "config": dataclasses.asdict(base),
              "xla_flags": os.environ.get("XLA_FLAGS", ""), "hardware": hardware(), "points": []}
    hw = hardware_name(record["hardware"])
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{hw}-optimisations{'-' + args.tag if args.tag else ''}.json"
    for num_seeds in seeds:
        for name, config in configs.items():
            point = {"variant": name, **bench.measure(config, num_seeds)}
            record["points"].append(point)
            path.write_text(json.dumps(record, indent=2) + "\n")  # each point as it finishes
            nan = float("nan")
            print(f"{name:>16} seeds {num_seeds:>6}: compile {point.get('compile_seconds', nan):6.2f} s  "
                  f"run {point.get('run_seconds', nan):7.3f} s  "
                  f"final return {point.get('final_return_mean', nan):6.1f}", flush=True)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
