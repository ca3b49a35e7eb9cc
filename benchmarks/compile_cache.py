"""The persistent compile cache on the README's command: compile time of the first run (an
empty cache) and of the same command again in a new process, as the runs record it
(config.json "results"), plus each process's wall time.

    python -m benchmarks.compile_cache --rounds 2 --out benchmarks/results/cpu-2core-compile-cache.json

Each round starts from an empty cache directory of its own. Extra arguments after `--` go
to `purejaxvpg train` (default: the README's `--env-id CartPole-v1 --num-seeds 8`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.first_compile import _commit, _hardware
from purejaxvpg.tools.hardware import load_average

README = ["--env-id", "CartPole-v1", "--num-seeds", "8"]


def one_run(cache: Path, out: Path, args: list[str]) -> dict:
    env = {**os.environ, "PUREJAXVPG_COMPILE_CACHE": str(cache)}
    start = time.perf_counter()
    done = subprocess.run(["purejaxvpg", "train", *args, "--no-progress", "--out", str(out)], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"purejaxvpg train failed:\n{done.stderr[-2000:]}")
    results = json.loads((out / "config.json").read_text())["results"]
    return {"wall_s": wall, "compile_seconds": results["compile_seconds"], "run_seconds": results["run_seconds"],
            "compile_from_cache": results["compile_from_cache"], "load_average_after": load_average()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else README
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compile_cache")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            cache = Path(tmp) / f"cache{r}"
            first = one_run(cache, Path(tmp) / f"first{r}", extra)
            again = one_run(cache, Path(tmp) / f"again{r}", extra)
            rounds.append({"first": first, "again": again})
            print(f"round {r + 1}: compile {first['compile_seconds']:.2f} s (empty cache), "
                  f"{again['compile_seconds']:.2f} s again (from cache: {again['compile_from_cache']}); "
                  f"process wall {first['wall_s']:.1f} s -> {again['wall_s']:.1f} s", flush=True)
    record = {"what": "benchmarks/compile_cache.py: `purejaxvpg train " + " ".join(extra) + "` twice per round, "
                      "the second in a new process with the cache the first filled",
              "command": "python -m benchmarks.compile_cache " + " ".join(argv),
              "date": time.strftime("%Y-%m-%d"), "commit": _commit(), "hardware": _hardware(), "rounds": rounds}
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
