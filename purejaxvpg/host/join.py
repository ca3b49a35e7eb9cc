"""Finished runs of seed ranges joined as one run: what `purejaxvpg merge` writes, and how a
chunked `purejaxvpg train` (seed_ranges.py) ends.

Seed i's key does not depend on the range it trains in (prng.seed_keys), so runs of the
ranges K..L-1 of one base seed, trained apart, together hold the very seeds of one run. A
part is read only when finished (results of every update and the final checkpoint); parts
join only when they are ranges of one run: same config, base seed and code version
(provenance.code_version, also of every --resume), no overlap and no gap. A gap is
refused, not skipped: a run directory says it holds seeds seed_start..seed_start+num_seeds-1,
and a seed's index in it is its position in that range (eval, load_policy, the rows of
config.json's results), which a gap would make false.
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import jax
import numpy as np

from purejaxvpg.algo import prng
from purejaxvpg.algo.metrics import EVAL_METRIC_NAMES, METRIC_NAMES
from purejaxvpg.config import Config
from purejaxvpg.host import driver, rundir
from purejaxvpg.host.checkpoint import Checkpoints, identity, steps
from purejaxvpg.host.driver import TrainResult
from purejaxvpg.host.provenance import same_code

# run options that do not change what a run computes: they may differ between the parts
HOW_IT_RAN = ("num_seeds", "seed_start", "chunk_size", "log_every", "checkpoint_every", "progress", "log",
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


def seeds_text(seeds: range) -> str:
    return f"{seeds.start}..{seeds.stop - 1}"


def read_part(path: Path, label: str = "merge", finish: str | None = None) -> Part:
    """A finished run directory; ValueError starting with `label` and naming it unless it
    is one (`finish`: how to finish it, `train --resume PATH` unless given)."""
    config, run = rundir.read_config(path)
    info = rundir.read_info(path)
    U = config.num_updates
    finish = finish or f"finish it with `purejaxvpg train --resume {path}`"
    results = info.get("results") or {}
    if results.get("updates_done") != U or not (path / "metrics.npz").is_file():
        raise ValueError(f"{label}: {path} is not finished (no results of all {U} updates); {finish}.")
    if not steps(path) or steps(path)[-1] != U:
        raise ValueError(f"{label}: {path} has no final checkpoint (update {U}); {finish}.")
    try:
        Part(path, config, info, {}).seeds
    except (KeyError, ValueError) as error:
        raise ValueError(f"{label}: {path}/config.json records no valid seed range ({error}).") from error
    try:
        with np.load(path / "metrics.npz") as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{label}: {path}/metrics.npz is damaged ({type(error).__name__}: {error}).") from error
    part = Part(path, config, info, arrays)
    shape = arrays.get("env_steps", np.empty(0)).shape
    if shape != (len(part.seeds), U) or ("seed" in arrays and list(arrays["seed"]) != list(part.seeds)):
        raise ValueError(f"{label}: {path}/metrics.npz does not hold seeds {seeds_text(part.seeds)} x {U} updates "
                         f"as its config.json says (env_steps {shape}).")
    return part


def check_parts(parts: list[Part], label: str = "merge") -> list[Part]:
    """The parts in seed order; ValueError starting with `label`, naming the run and the
    difference unless they are ranges of one run (same config, base seed and code; no
    overlap, no gap)."""
    first = parts[0]
    same_options = {k: v for k, v in first.run.items() if k not in HOW_IT_RAN}
    for part in parts[1:]:
        where = f"{label}: {part.path} and {first.path}"
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
    check_codes(parts, first.codes[0], f"{first.path} was trained by", label)
    parts = sorted(parts, key=lambda p: p.seeds.start)
    for before, after in zip(parts, parts[1:]):
        if after.seeds.start < before.seeds.stop:
            both = range(after.seeds.start, min(before.seeds.stop, after.seeds.stop))
            raise ValueError(f"{label}: {before.path} (seeds {seeds_text(before.seeds)}) and {after.path} "
                             f"(seeds {seeds_text(after.seeds)}) overlap in seeds {seeds_text(both)}.")
        if after.seeds.start > before.seeds.stop:
            gap = range(before.seeds.stop, after.seeds.start)
            raise ValueError(f"{label}: seeds {seeds_text(gap)} are missing between {before.path} and {after.path}: "
                             f"train them (--seed-start {gap.start} --num-seeds {len(gap)}) or merge each "
                             "unbroken range on its own.")
    return parts


def check_codes(parts: list[Part], reference: dict | None, whose: str, label: str) -> None:
    """ValueError unless every part was trained, and every resume of it run, by the code
    `reference` (provenance.code_version; `whose` names it in the message): runs of other
    code are never joined."""
    for part in parts:
        for i, code in enumerate(part.codes):
            how = "trained" if i == 0 else f"resumed (--resume {i})"
            if code is None or reference is None:
                raise ValueError(f"{label}: {part.path} was {how} by a purejaxvpg that did not record its code "
                                 "version: runs whose code cannot be compared are never joined; train it again.")
            if not same_code(code, reference):
                raise ValueError(
                    f"{label}: {part.path} was {how} by other code than {whose} "
                    f"(purejaxvpg {code.get('purejaxvpg')}, jax {code.get('jax')}, jaxlib {code.get('jaxlib')}, "
                    f"source {str(code.get('source_sha256'))[:12]} vs {reference.get('purejaxvpg')}, "
                    f"{reference.get('jax')}, {reference.get('jaxlib')}, {str(reference.get('source_sha256'))[:12]}): "
                    "not parts of one run.")


def final_state(part: Part):
    """The part's final TrainState [its seeds], from its final checkpoint."""
    checkpoints = Checkpoints(part.path)
    try:
        abstract = driver.abstract_state(part.config, len(part.seeds))
        _, state, _ = checkpoints.restore(abstract, step=part.config.num_updates, eval_every=part.config.eval_every)
    finally:
        checkpoints.close()
    return state


def join(parts: list[Part], states: list, **fields) -> TrainResult:
    """The checked parts (in seed order) and their final states as one TrainResult of all
    their seeds; `fields` (timings) as in TrainResult."""
    first, config = parts[0], parts[0].config
    joined = {k: np.concatenate([p.arrays[k] for p in parts])
              for k in (*METRIC_NAMES, *EVAL_METRIC_NAMES) if k in first.arrays}
    seeds = range(first.seeds.start, parts[-1].seeds.stop)
    return driver.result(config, jax.tree.map(prng.concatenate, *states),
                         {k: v for k, v in joined.items() if k in METRIC_NAMES},
                         {k: v for k, v in joined.items() if k in EVAL_METRIC_NAMES},
                         num_seeds=len(seeds), seed_start=seeds.start, **fields)


def save_final(out: Path, result: TrainResult, seed: int) -> None:
    """The joined run's final checkpoint (every seed's state, every update's metrics),
    labelled as one run of `seed`'s seeds result.seed_start.. (checkpoint.identity)."""
    config = result.config
    checkpoints = Checkpoints(out)
    try:
        checkpoints.save(config.num_updates, result.final_state, {**result.metrics, **result.eval_metrics},
                         identity(config, seed, result.seed_start, result.num_seeds))
    finally:
        checkpoints.close()


def record(parts: list[Part]) -> list[dict]:
    """What config.json keeps of each part: where it was, its seeds, how and by what it ran."""
    return [{"run_dir": str(p.path.absolute()), "seed_start": p.seeds.start, "num_seeds": len(p.seeds),
             **{k: p.info.get(k) for k in ("git_commit", "backend", "device", "device_count", "resumes")},
             "results": p.info["results"]} for p in parts]
