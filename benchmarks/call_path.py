"""The modules `purejaxvpg train` passes through from its parsed arguments to the compiled
call: every function call into a purejaxvpg module (sys.setprofile; imports left out)
from the moment the train command gets the parsed arguments until the compiled program
is built (driver.compile_blocks), as the sequence of module changes.

    python -m benchmarks.call_path [--out FILE.json]

Prints one JSON object: `modules` (distinct, in first-visit order), `hops` (calls that
enter another module than the caller's), `returns` (hops back into a module already left)
and `path` (the module sequence, repeats collapsed). A tiny CartPole run with --eval-every,
in a temporary directory; run it from the repository root of the checkout to measure.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import sys
import tempfile
from pathlib import Path

PACKAGE = ("purejaxvpg", "envs")


def _module(frame) -> str | None:
    name = frame.f_globals.get("__name__", "")
    return name if name.split(".")[0] in PACKAGE else None


def measure() -> dict:
    from purejaxvpg.host import driver
    from purejaxvpg.tools import cli

    path, recording = [], [False]
    stop_at = driver.compile_blocks.__wrapped__.__code__  # lru_cache keeps the function

    def profile(frame, event, arg):
        if event != "call" or not recording[0]:
            return
        if frame.f_code is stop_at:
            path.append(_module(frame))
            recording[0] = False
            return
        # a function's frame only: a module or class body runs on import, which is no call
        module = _module(frame) if frame.f_code.co_flags & inspect.CO_OPTIMIZED else None
        if module is not None and (not path or path[-1] != module):
            path.append(module)

    from purejaxvpg.tools import train_command

    real = train_command.train

    def traced(args):
        recording[0] = True
        sys.setprofile(profile)
        try:
            return real(args)
        finally:
            sys.setprofile(None)

    train_command.train = traced
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        code = cli.main(["train", "--env-id", "CartPole-v1", "--total-steps", "2048", "--num-envs", "4",
                         "--num-steps", "16", "--eval-every", "8", "--eval-episodes", "2", "--num-seeds", "2",
                         "--out", str(Path(tmp) / "run"), "--no-progress"])
    seen, returns = [], 0
    for previous, module in zip([None, *path], path):
        if module in seen and module != previous:
            returns += 1
        if module not in seen:
            seen.append(module)
    return {"exit_code": code, "modules": seen, "hops": len(path) - 1, "returns": returns, "path": path}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    record = measure()
    text = json.dumps(record, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
