"""What the loggers cost: the same session (same config, seeds, blocks) with no logger,
with metrics.csv only (what `purejaxvpg train` always does), + TensorBoard, + W&B (offline).

    python -m benchmarks.logging_overhead [--env-id CartPole-v1] [--num-seeds 8] [--repeats 3]

Compile time is measured once (the first session compiles; the others reuse it, as a
resumed run in one process does). Per variant and repeat: `loop_seconds`, the wall time
from the first block's start to the end of the last block's logging (training, transfers
and every logger's log_block, the part the loggers could slow), of it `logging_seconds`
(inside the loggers: the direct cost, robust to load that makes loop times drift),
`start_seconds` (the loggers' start: W&B's init, TensorBoard's writer) and `finish_seconds`
(closing them; W&B's artifact of the run directory). Variants are interleaved, so drifting load hits them alike.
Writes benchmarks/results/<hardware>-logging-overhead.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import purejaxvpg as pjv
from purejaxvpg.host import loggers, session
from purejaxvpg.tools.hardware import hardware, hardware_name, load_average

VARIANTS = {"none": None, "csv": (), "csv+tensorboard": ("tensorboard",),
            "csv+tensorboard+wandb": ("tensorboard", "wandb")}


def timed_session(config, options, run_dir: Path, names) -> dict:
    """One session with the loggers `names` (None: no logger at all); its timings."""
    logs = None if names is None else loggers.make(run_dir, names)
    marks = {}

    def start(done: int) -> None:
        marks["start"] = time.perf_counter()
        if logs is not None:
            logs.start(config, {**dataclasses.asdict(options), "benchmark": True}, done)
        marks["loop"] = time.perf_counter()

    def on_block(*block) -> None:
        begin = time.perf_counter()
        if logs is not None:
            logs.on_block(*block)
        marks["last_block"] = time.perf_counter()
        marks["logging"] = marks.get("logging", 0.0) + marks["last_block"] - begin

    result = session.run(config, options, run_dir, on_start=start, on_block=on_block)
    finish = time.perf_counter()
    if logs is not None:
        logs.finish(result)
    return {"compile_seconds": result.compile_seconds,
            "start_seconds": marks["loop"] - marks["start"],
            "loop_seconds": marks["last_block"] - marks["loop"],
            "logging_seconds": marks["logging"],  # of loop_seconds: inside the loggers' log_block
            "finish_seconds": time.perf_counter() - finish,
            "session_run_seconds": result.run_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="CartPole-v1")
    parser.add_argument("--num-seeds", type=int, default=8)
    parser.add_argument("--total-steps", type=int, default=250_000)
    parser.add_argument("--log-every", type=int, default=0, help="updates per block (0: ~50 blocks)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)

    os.environ.setdefault("WANDB_MODE", "offline")  # no account, no network: W&B's own files only
    os.environ.setdefault("WANDB_SILENT", "true")
    config = pjv.Config(env_id=args.env_id, total_steps=args.total_steps)
    options = session.RunOptions(num_seeds=args.num_seeds, log_every=args.log_every,
                                 checkpoint_every=0, progress=False)
    runs = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR"):  # artifacts staged here too
            os.environ.setdefault(name, tmp)
        for repeat in range(args.repeats):
            for name, names in VARIANTS.items():
                run_dir = Path(tmp) / f"{name}-{repeat}"
                run_dir.mkdir()
                runs[name].append(timed_session(config, options, run_dir, names))
                print(name, {k: round(v, 3) for k, v in runs[name][-1].items()}, flush=True)
    median = {name: {key: statistics.median(r[key] for r in records) for key in records[0]}
              for name, records in runs.items()}
    base = median["none"]["loop_seconds"]
    record = {
        "config": dataclasses.asdict(config),
        "num_seeds": args.num_seeds,
        "updates_per_block": options.block(config),
        "blocks": -(-config.num_updates // options.block(config)),
        "compile_seconds": runs["none"][0]["compile_seconds"],  # the first session compiled
        "runs": runs,
        "median": median,
        "loop_overhead_vs_none": {name: m["loop_seconds"] / base - 1.0 for name, m in median.items()},
        "load_average_after": load_average(),
        "hardware": hardware(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{hardware_name(record['hardware'])}-logging-overhead.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    for name, m in median.items():
        overhead = 100 * record["loop_overhead_vs_none"][name]
        print(f"{name:>22}: loop {m['loop_seconds']:.2f} s ({overhead:+.1f}%), "
              f"start {m['start_seconds']:.2f} s, finish {m['finish_seconds']:.2f} s")
    print(f"compile {record['compile_seconds']:.1f} s (once); wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
