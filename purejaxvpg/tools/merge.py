"""`purejaxvpg merge RUN_DIR... --out OUT`: finished runs of seed ranges as one run.

Jobs that cannot talk to each other (the tasks of a Slurm array job) each train a range,
`train --seed --seed-start K --num-seeds N`; seed i's key does not depend on the range
(prng.seed_keys), so together they train the very seeds of one run. `merge` checks that the
runs are parts of one run and writes OUT as if one run had trained every seed: config.json,
metrics.npz / .csv (global seed indices), learning_curve.png and one final checkpoint of all
the seeds, so `purejaxvpg eval OUT` and `load_policy(OUT, seed=i)` read it like any run.

Refused before anything is written (ValueError naming the run directory and the difference):
a run that is not finished, a config, base seed or code version that differs from the first
run's, overlapping ranges, and gaps (host/join.py says why). Train the missing range, or merge
each unbroken block on its own (`export` reads several runs at once).
"""

from __future__ import annotations

import datetime
import shutil
import sys
from pathlib import Path

from purejaxvpg.host import join, rundir, runlock
from purejaxvpg.report import summary


def merge(run_dirs: list[Path], out: Path) -> Path:
    """Merge the finished runs of seed ranges `run_dirs` into the new run directory `out`."""
    run_dirs, out = [Path(p) for p in run_dirs], Path(out)
    twice = [str(p) for i, p in enumerate(run_dirs) if any(p.resolve() == q.resolve() for q in run_dirs[:i])]
    if twice:
        raise ValueError(f"run_dir: {', '.join(twice)} given twice.")
    rundir.check_new_run_dir(out)
    locks = []
    try:
        for path in run_dirs:
            if not path.is_dir():
                raise ValueError(f"run_dir: {path} is not a directory.")
            locks.append(runlock.lock_existing(path, "run_dir"))  # one still training is refused
        parts = join.check_parts([join.read_part(path) for path in run_dirs])
        states = [join.final_state(p) for p in parts]  # a damaged checkpoint: refused before writing
        lock = runlock.RunLock(out)
        try:
            rundir.check_new_run_dir(out)  # again under the lock: a run may have just ended there
        except BaseException:
            lock.remove_created()  # that run's files are not ours to remove
            raise
        try:
            _write(parts, states, out)
        except BaseException:
            for name in rundir.RUN_FILES:  # it held none of them (checked under the lock): all are ours
                path = out / name
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            lock.remove_created()
            raise
        lock.release()
    finally:
        for held in locks:
            held.release()
    return out


def _write(parts: list[join.Part], states: list, out: Path) -> None:
    """metrics, config.json with its results, the final checkpoint (the parts' final
    states joined along the seed axis), then the plot."""
    first = parts[0]
    nan = float("nan")  # no one process timed the whole: each part's timings are in "merged"
    result = join.join(parts, states, compile_seconds=nan, run_seconds=nan, updates_trained=0)
    rundir.write_metrics(out, result, result.seed_start)
    info = {k: v for k, v in first.info.items() if k not in ("run", "results", "resumes")}
    info["run"] = {**first.run, "num_seeds": result.num_seeds, "seed_start": result.seed_start, "log": []}
    info["merged"] = {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "by": rundir.environment(),
        "runs": join.record(parts),
    }
    rundir.write_json(out / "config.json", info)
    rundir.write_results(out, summary.results(result))
    join.save_final(out, result, first.run["seed"])
    rundir.write_plot(out, result)


def command(args) -> int:
    """`purejaxvpg merge RUN_DIR... --out OUT`."""
    out = merge(args.run_dirs, args.out)
    info = rundir.read_info(out)
    run = info["run"]
    print(f"merged {len(args.run_dirs)} runs: seeds {run['seed_start']}..{run['seed_start'] + run['num_seeds'] - 1} "
          f"of base seed {run['seed']}", file=sys.stderr)
    print(f"wrote {out}/: config.json, metrics.csv, metrics.npz, learning_curve.png, checkpoints/")
    return 0
