"""Time to the first compiled program: process start -> `import purejaxvpg` -> the end of the
first compile of a tiny run of ENV_ID, in this (fresh) process.

    python -m benchmarks.first_compile CartPole-v1            # one JSON line
    python -m benchmarks.first_compile --repeats 3 --out FILE CartPole-v1 Chain-known ...

One measurement per process, since what is measured is mostly imports, which a second run
in the same process would not pay. `--repeats N` starts N fresh processes per id (and times
`import purejaxvpg` and `import purejaxvpg.envs` alone, N times each, with and without
`-X importtime`) and writes the raw figures and their medians. Run from the repository root,
so that ids such as "tests.own_env_fixture:make_env" import.
"""

from __future__ import annotations

import time

START = time.perf_counter()  # before any import below: what the user's script pays too

import argparse  # noqa: E402 -- after START on purpose
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def _startup_seconds() -> float | None:
    """Seconds from the process's creation to START (interpreter start-up), from /proc; None
    elsewhere. Resolution: one clock tick (10 ms)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat(5): start time
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(uptime - started - (time.perf_counter() - START), 0.0)


def measure(env_id: str, total_steps: int) -> dict:
    """One tiny run (one update with the default 8 envs x 64 steps) of env_id, timed from START."""
    startup = _startup_seconds()
    import purejaxvpg as pjv

    compiled_at = []
    config = pjv.Config(env_id=env_id, total_steps=total_steps)
    before_train = time.perf_counter() - START
    result = pjv.train(config, num_seeds=1,
                       on_chunk=lambda done, total, s: compiled_at.append(time.perf_counter() - START))
    total = time.perf_counter() - START
    return {
        "env_id": env_id,
        "before_train_s": before_train,  # imports of `purejaxvpg` and its Config
        "compile_seconds": result.compile_seconds,  # the XLA compile alone (pjv.train's own figure)
        "to_first_compile_s": compiled_at[0],  # start -> end of the first compile (imports, env build, trace)
        "total_s": total,
        "process_startup_s": startup,  # interpreter start-up before START, not included above
        "gymnax_imported": "gymnax" in sys.modules,
        "loadavg_1min": os.getloadavg()[0],  # other work on the machine when this one ended
    }


def _importtime_total(code: str) -> float:
    """Seconds of `python -X importtime -c code`: the sum of every module's own import time."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          check=True)
    own = [int(line.split("|")[0].split(":")[1]) for line in done.stderr.splitlines()
           if line.startswith("import time:") and line.split("|")[0].split(":")[1].strip().isdigit()]
    return sum(own) / 1e6


def _wall(code: str) -> float:
    """Wall seconds of a fresh `python -c code`, interpreter start-up included."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _hardware() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), None)
    import jax

    return {"cpu_model": model, "nproc": os.cpu_count(), "jax": jax.__version__,
            "python": sys.version.split()[0], "backend": jax.default_backend()}


def repeated(env_ids: list[str], repeats: int, total_steps: int) -> dict:
    """Every figure `repeats` times in fresh processes, interleaved (drifting load hits all alike)."""
    imports = {"import purejaxvpg": "import purejaxvpg", "import purejaxvpg.envs": "import purejaxvpg.envs"}
    raw: dict[str, list] = {}
    for _ in range(repeats):
        for name, code in imports.items():
            raw.setdefault(f"{name}: -X importtime total_s", []).append(_importtime_total(code))
            raw.setdefault(f"{name}: wall_s", []).append(_wall(code))
        for env_id in env_ids:
            done = subprocess.run([sys.executable, "-m", "benchmarks.first_compile", env_id,
                                   "--total-steps", str(total_steps)], capture_output=True, text=True, check=True)
            raw.setdefault(env_id, []).append(json.loads(done.stdout.strip().splitlines()[-1]))
    medians = {}
    for name, values in raw.items():
        if values and isinstance(values[0], dict):
            medians[name] = {k: statistics.median(v[k] for v in values) for k in values[0]
                             if isinstance(values[0][k], float)}
            medians[name]["gymnax_imported"] = values[0]["gymnax_imported"]
        else:
            medians[name] = statistics.median(values)
    return {"commit": _commit(), "repeats": repeats, "total_steps": total_steps, "hardware": _hardware(),
            "median": medians, "raw": raw}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env_ids", nargs="+")
    parser.add_argument("--total-steps", type=int, default=512, help="512: one update of the default 8 x 64")
    parser.add_argument("--repeats", type=int, default=0, help="0: one measurement, this process")
    parser.add_argument("--out", type=Path, help="with --repeats: write the JSON here too")
    args = parser.parse_args(argv)
    if not args.repeats:
        if len(args.env_ids) != 1:
            parser.error("one env id per process (or --repeats N for several)")
        print(json.dumps(measure(args.env_ids[0], args.total_steps)))
        return 0
    record = repeated(args.env_ids, args.repeats, args.total_steps)
    text = json.dumps(record, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(json.dumps(record["median"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
