"""What the default checkpoints cost: the README command's session with only the final
checkpoint vs with the default cadence (about every tenth of the run).

    python -m benchmarks.checkpoint_overhead [--env-id CartPole-v1] [--num-seeds 8] [--repeats 3]

Both sides are what `purejaxvpg train` runs (blocks of ~2% of the run, the same config and
seeds, a fresh run directory each time) timed wall-clock around the whole session with the
compile excluded (compiled once before, cached); repeats are interleaved, so drifting
machine load hits both alike. Writes benchmarks/results/<hardware>-checkpoint-overhead.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

import purejaxvpg as pjv
from purejaxvpg.host import rundir, session
from purejaxvpg.host.checkpoint import Checkpoints
from purejaxvpg.tools.hardware import hardware, hardware_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="CartPole-v1")
    parser.add_argument("--num-seeds", type=int, default=8)
    parser.add_argument("--total-steps", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)

    config = pjv.Config(env_id=args.env_id, total_steps=args.total_steps)
    sides = {
        "final_only": session.RunOptions(num_seeds=args.num_seeds, checkpoint_every=0, progress=False),
        "default": session.RunOptions(num_seeds=args.num_seeds, progress=False),
    }
    saves = {name: 0 for name in sides}
    save = Checkpoints.save

    def counting(name):
        def wrapped(self, *a, **k):
            saves[name] += 1
            return save(self, *a, **k)
        return wrapped

    load_before = os.getloadavg()  # a shared machine: say how busy it was
    session.run(config, sides["default"])  # compile once (cached for both sides)
    seconds = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, options in sides.items():
            Checkpoints.save = counting(name)
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                result = session.run(config, options, Path(tmp) / "run")
                seconds[name].append(time.perf_counter() - start - result.compile_seconds)
            Checkpoints.save = save
    a, b = statistics.median(seconds["final_only"]), statistics.median(seconds["default"])
    record = {
        "config": dataclasses.asdict(config),
        "num_seeds": args.num_seeds,
        "num_updates": config.num_updates,
        "updates_per_block": sides["default"].block(config),
        "default_checkpoint_every": sides["default"].checkpoint_interval(config),
        "checkpoints_per_run": {name: n // args.repeats for name, n in saves.items()},
        "wall_seconds_compile_excluded": seconds,
        "overhead": b / a - 1.0,
        "hardware": hardware(),
        "load_average_1_5_15_min": {"before": load_before, "after": os.getloadavg()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{hardware_name(record['hardware'])}-checkpoint-overhead.json"
    path = rundir.write_json(path, record)
    print(f"final checkpoint only {a:.2f} s, default cadence {b:.2f} s "
          f"({record['checkpoints_per_run']['default']} checkpoints; median of {args.repeats}): "
          f"overhead {100 * record['overhead']:+.1f}%; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
