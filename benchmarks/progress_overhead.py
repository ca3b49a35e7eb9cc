"""What the progress bar costs: one jitted call for the whole run vs the same run in
blocks with a progress refresh (and a metrics transfer) after each block.

    python -m benchmarks.progress_overhead [--env-id CartPole-v1] [--num-seeds 8] [--repeats 3]

Both sides exclude compile time and run the same config and seeds; the session side is
what `purejaxvpg train` does (about 50 refreshes per run by default). Writes
benchmarks/results/<hardware>-progress-overhead.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

import purejaxvpg as pjv
from purejaxvpg.host import session
from purejaxvpg.tools.hardware import hardware, hardware_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="CartPole-v1")
    parser.add_argument("--num-seeds", type=int, default=8)
    parser.add_argument("--total-steps", type=int, default=500_000)
    parser.add_argument("--log-every", type=int, default=0, help="updates per block (0: ~50 blocks)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)

    config = pjv.Config(env_id=args.env_id, total_steps=args.total_steps)
    options = session.RunOptions(num_seeds=args.num_seeds, log_every=args.log_every, progress=True)
    one_call, blocks = [], []
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        one_call.append(pjv.train(config, num_seeds=args.num_seeds).run_seconds)
        blocks.append(session.run(config, options).run_seconds)
    a, b = statistics.median(one_call), statistics.median(blocks)
    record = {
        "config": dataclasses.asdict(config),
        "num_seeds": args.num_seeds,
        "updates_per_block": options.block(config),
        "blocks": -(-config.num_updates // options.block(config)),
        "one_call_run_seconds": one_call,
        "session_run_seconds": blocks,
        "overhead": b / a - 1.0,
        "hardware": hardware(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{hardware_name(record['hardware'])}-progress-overhead.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"one call {a:.2f} s, with progress {b:.2f} s (median of {args.repeats}): "
          f"overhead {100 * record['overhead']:+.1f}%; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
