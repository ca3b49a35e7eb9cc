"""`purejaxvpg merge RUN_DIR... --out OUT`: finished runs of seed ranges as one run.

Jobs that cannot talk to each other (the tasks of a Slurm array job) each train a range,
`train --seed --seed-start K --num-seeds N`; seed i's key does not depend on the range
(prng.seed_keys), so together they train the very seeds of one run. `merge` checks that the
runs are parts of one run and writes OUT as if one run had trained every seed: config.json,
metrics.npz / .csv (global seed indices), learning_curve.png and one final checkpoint of all
the seeds, so `purejaxvpg eval OUT` and `load_policy(OUT, seed=i)` read it like any run.

Refused before anything is written (ValueError naming the run directory and the difference):
a run that is not finished, a config, base seed or code version (provenance.code_version, also
of every --resume) that differs from the first run's, overlapping ranges, and gaps. A gap is
refused, not skipped: a run directory says it holds seeds seed_start..seed_start+num_seeds-1,
and a seed's index in it is its position in that range (eval, load_policy, the rows of
config.json's results), which a gap would make false. Train the missing range, or merge
each unbroken block on its own (`export` reads several runs at once).
"""

from __future__ import annotations

import dataclasses
import datetime
import shutil
import sys
import zipfile
from pathlib import Path

import jax
import numpy as np

from purejaxvpg.algo import prng
from purejaxvpg.algo.metrics import EVAL_METRIC_NAMES, METRIC_NAMES
from purejaxvpg.config import Config
from purejaxvpg.host import driver, rundir, runlock
from purejaxvpg.host.checkpoint import Checkpoints, identity, steps
from purejaxvpg.host.provenance import same_code
from purejaxvpg.report import summary

# run options that do not change what a run computes: they may differ between the parts
HOW_IT_RAN = ("num_seeds", "seed_start", "log_every", "checkpoint_every", "progress", "log",
              "wandb_group", "devices")


@dataclasses.dataclass(frozen=True)
class Part:
    """One finished run of a seed range: its config.json (`info`) and metrics.npz arrays."""

    path: Path
    config: Config
    info: dict
    arrays: dict

    @property
    def run(self) -> dict:
        return self.info.get("run", {})

    @property
    def seeds(self) -> range:
        return prng.seed_range(self.run["num_seeds"], self.run.get("seed_start", 0))

    @property
    def codes(self) -> list[dict | None]:
        """The code version that trained it, and that of every resume."""
        return [self.info.get("code")] + [r.get("code") for r in self.info.get("resumes", [])]


def read_part(path: Path) -> Part:
    """A finished run directory; ValueError naming it unless it is one."""
    config, run = rundir.read_config(path)
    info = rundir.read_info(path)
    U = config.num_updates
    finish = f"finish it with `purejaxvpg train --resume {path}`"
    results = info.get("results") or {}
    if results.get("updates_done") != U or not (path / "metrics.npz").is_file():
        raise ValueError(f"merge: {path} is not finished (no results of all {U} updates); {finish}.")
    if not steps(path) or steps(path)[-1] != U:
        raise ValueError(f"merge: {path} has no final checkpoint (update {U}); {finish}.")
    try:
        Part(path, config, info, {}).seeds
    except (KeyError, ValueError) as error:
        raise ValueError(f"merge: {path}/config.json records no valid seed range ({error}).") from error
    try:
        with np.load(path / "metrics.npz") as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"merge: {path}/metrics.npz is damaged ({type(error).__name__}: {error}).") from error
    part = Part(path, config, info, arrays)
    shape = arrays.get("env_steps", np.empty(0)).shape
    if shape != (len(part.seeds), U) or ("seed" in arrays and list(arrays["seed"]) != list(part.seeds)):
        raise ValueError(f"merge: {path}/metrics.npz does not hold seeds {_text(part.seeds)} x {U} updates "
                         f"as its config.json says (env_steps {shape}).")
    return part


def _text(seeds: range) -> str:
    return f"{seeds.start}..{seeds.stop - 1}"


def check_parts(parts: list[Part]) -> list[Part]:
    """The parts in seed order; ValueError naming the run and the difference unless they
    are ranges of one run (same config, base seed and code; no overlap, no gap)."""
    first = parts[0]
    same_options = {k: v for k, v in first.run.items() if k not in HOW_IT_RAN}
    for part in parts[1:]:
        where = f"merge: {part.path} and {first.path}"
        mine, theirs = dataclasses.asdict(part.config), dataclasses.asdict(first.config)
        differ = [f"{k} {mine[k]!r} vs {theirs[k]!r}" for k in mine if mine[k] != theirs[k]]
        if differ:
            raise ValueError(f"{where} have different configs ({', '.join(differ)}): not parts of one run.")
        options = {k: v for k, v in part.run.items() if k not in HOW_IT_RAN}
        if options != same_options:
            differ = [f"{k} {options.get(k)!r} vs {same_options.get(k)!r}"
                      for k in sorted({*options, *same_options}) if options.get(k) != same_options.get(k)]
            raise ValueError(f"{where} have different run options ({', '.join(differ)}): not parts of one "
                             "run (every range trains with the same --seed).")
    reference = first.codes[0]
    for part in parts:
        for i, code in enumerate(part.codes):
            how = "trained" if i == 0 else f"resumed (--resume {i})"
            if code is None:
                raise ValueError(f"merge: {part.path} was {how} by a purejaxvpg that did not record its code "
                                 "version: runs whose code cannot be compared are never merged; train it again.")
            if not same_code(code, reference):
                raise ValueError(
                    f"merge: {part.path} was {how} by other code than {first.path} was trained by "
                    f"(purejaxvpg {code.get('purejaxvpg')}, jax {code.get('jax')}, jaxlib {code.get('jaxlib')}, "
                    f"source {str(code.get('source_sha256'))[:12]} vs {reference.get('purejaxvpg')}, "
                    f"{reference.get('jax')}, {reference.get('jaxlib')}, {str(reference.get('source_sha256'))[:12]}): "
                    "not parts of one run.")
    parts = sorted(parts, key=lambda p: p.seeds.start)
    for before, after in zip(parts, parts[1:]):
        if after.seeds.start < before.seeds.stop:
            both = range(after.seeds.start, min(before.seeds.stop, after.seeds.stop))
            raise ValueError(f"merge: {before.path} (seeds {_text(before.seeds)}) and {after.path} "
                             f"(seeds {_text(after.seeds)}) overlap in seeds {_text(both)}.")
        if after.seeds.start > before.seeds.stop:
            gap = range(before.seeds.stop, after.seeds.start)
            raise ValueError(f"merge: seeds {_text(gap)} are missing between {before.path} and {after.path}: "
                             f"train them (--seed-start {gap.start} --num-seeds {len(gap)}) or merge each "
                             "unbroken range on its own.")
    return parts


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
        parts = check_parts([read_part(path) for path in run_dirs])
        states = [_final_state(p) for p in parts]  # a damaged checkpoint: refused before writing
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


def _final_state(part: Part):
    checkpoints = Checkpoints(part.path)
    try:
        abstract = driver.abstract_state(part.config, len(part.seeds))
        _, state, _ = checkpoints.restore(abstract, step=part.config.num_updates, eval_every=part.config.eval_every)
    finally:
        checkpoints.close()
    return state


def _write(parts: list[Part], states: list, out: Path) -> None:
    """metrics, config.json with its results, the final checkpoint (the parts' final
    states joined along the seed axis), then the plot."""
    first, config = parts[0], parts[0].config
    joined = {k: np.concatenate([p.arrays[k] for p in parts])
              for k in (*METRIC_NAMES, *EVAL_METRIC_NAMES) if k in first.arrays}
    state = jax.tree.map(prng.concatenate, *states)
    seeds = range(first.seeds.start, parts[-1].seeds.stop)
    nan = float("nan")  # no one process timed the whole: each part's timings are in "merged"
    result = driver.result(config, state, {k: v for k, v in joined.items() if k in METRIC_NAMES},
                           {k: v for k, v in joined.items() if k in EVAL_METRIC_NAMES},
                           num_seeds=len(seeds), compile_seconds=nan, run_seconds=nan, updates_trained=0,
                           seed_start=seeds.start)
    rundir.write_metrics(out, result, seeds.start)
    info = {k: v for k, v in first.info.items() if k not in ("run", "results", "resumes")}
    info["run"] = {**first.run, "num_seeds": len(seeds), "seed_start": seeds.start, "log": []}
    info["merged"] = {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "by": rundir.environment(),
        "runs": [{"run_dir": str(p.path.absolute()), "seed_start": p.seeds.start, "num_seeds": len(p.seeds),
                  **{k: p.info.get(k) for k in ("git_commit", "backend", "device", "device_count", "resumes")},
                  "results": p.info["results"]} for p in parts],
    }
    rundir.write_json(out / "config.json", info)
    rundir.write_results(out, summary.results(result))
    checkpoints = Checkpoints(out)
    try:
        checkpoints.save(config.num_updates, state, joined,
                         identity(config, first.run["seed"], seeds.start, len(seeds)))
    finally:
        checkpoints.close()
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
