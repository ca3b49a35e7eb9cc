"""`purejaxvpg.train`: seeds in chunks that fit in device memory, each chunk a session
(session.run) without a run directory; finished chunks written as they complete.

`train` is the Python API's whole host loop: seed chunks outside, the session's blocks of
updates inside (one block, one compiled call, unless `progress_fn` asks for more), so
the CLI and the API drive the same program the same way.

`ChunkStore`: one `.npz` per chunk (its metrics and final-state leaves) in `results_dir`,
beside a `run.json` that names the run (config, seed keys, a sweep's hyperparameters) and
the code that computed it (package version, jax versions, a digest of the source, git
commit), so a rerun only reuses chunks of the very same run computed by the very same
code. Both checks happen before anything compiles.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from purejaxvpg.algo import prng
from purejaxvpg.algo.program import Agent, HyperParams
from purejaxvpg.checks import require_int
from purejaxvpg.config import SWEEPABLE, Config, check_hyperparameter
from purejaxvpg.host import driver, memory, placement, session
from purejaxvpg.host.driver import TrainResult
from purejaxvpg.host.provenance import code_version, same_code

MARKER = "run.json"


class ChunkStore:
    """`results_dir` holding the finished chunks of one run. Raises ValueError (naming
    results_dir) when the directory is a file, holds something else, holds another run's
    chunks or chunks computed by other code; creates it (and run.json) otherwise."""

    def __init__(self, results_dir: str | Path, config, keys: jax.Array, hparams=None):
        self.dir = Path(results_dir)
        identity = {
            "config": dataclasses.asdict(config),
            "keys": np.asarray(jax.random.key_data(keys)).tolist(),
        }
        if hparams is not None:  # a sweep: each run's hyperparameters are part of the run
            identity["hparams"] = {k: np.asarray(v).tolist() for k, v in vars(hparams).items()}
        identity = json.loads(json.dumps(identity))  # tuples -> lists, as read back
        code = code_version()
        marker = self.dir / MARKER
        how = f"delete {self.dir} to train these seeds again, or pass another results_dir"
        if self.dir.exists() and not self.dir.is_dir():
            raise ValueError(f"results_dir: {self.dir} is a file, not a directory; pass a directory.")
        if not marker.exists():
            if self.dir.exists() and any(self.dir.iterdir()):
                raise ValueError(
                    f"results_dir: {self.dir} is not empty and holds no {MARKER}: it is not a "
                    "chunk directory of purejaxvpg.train (a `purejaxvpg train` run directory "
                    "cannot be one); pass an empty or new directory."
                )
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                _write_atomic(marker, json.dumps({"run": identity, "code": code}, indent=1))
            except OSError as error:
                raise ValueError(f"results_dir: cannot write to {self.dir}: {error.strerror or error}.") from error
            return
        try:
            saved = json.loads(marker.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"results_dir: {marker} cannot be read ({error}); {how}.") from error
        if not isinstance(saved, dict) or "code" not in saved:
            raise ValueError(
                f"results_dir: {self.dir} holds chunks written by an older purejaxvpg that did not "
                f"record its code version; stale chunks are never mixed with new ones: {how}."
            )
        if saved.get("run") != identity:
            raise ValueError(
                f"results_dir: {self.dir} holds chunks of a different run (config or seeds differ); "
                f"{how}."
            )
        if not same_code(saved.get("code"), code):
            was = saved.get("code") or {}
            raise ValueError(
                f"results_dir: {self.dir} holds chunks computed by other code "
                f"(purejaxvpg {was.get('purejaxvpg')}, commit {was.get('git_commit')}, source "
                f"{str(was.get('source_sha256'))[:12]}, jax {was.get('jax')}; this is purejaxvpg "
                f"{code['purejaxvpg']}, commit {code['git_commit']}, source "
                f"{code['source_sha256'][:12]}, jax {code['jax']}); stale chunks are never mixed "
                f"with new ones: {how}."
            )

    def _path(self, first: int, last: int) -> Path:
        return self.dir / f"chunk-{first:07d}-{last:07d}.npz"

    def save(self, first: int, last: int, result: TrainResult) -> None:
        """Write a chunk's TrainResult (final state, metrics, evaluations) atomically: a
        crash mid-write leaves no half-written chunk behind."""
        arrays = {f"state.{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(prng.to_data(result.final_state)))}
        arrays.update({f"metric.{k}": v for k, v in result.metrics.items()})
        arrays.update({f"eval.{k}": v for k, v in result.eval_metrics.items()})
        tmp = self._path(first, last).with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, self._path(first, last))

    def load(self, first: int, last: int, abstract_state):
        """The chunk's (final_state, metrics, evaluations), or None if it has not been written.

        `abstract_state` is the state's structure (driver.abstract_state), used to restore
        PRNG keys; metrics and evaluations are name -> [seeds, ...]."""
        path = self._path(first, last)
        if not path.exists():
            return None
        leaves, treedef = jax.tree.flatten(abstract_state)
        with np.load(path) as data:
            state = treedef.unflatten([data[f"state.{i}"] for i in range(len(leaves))])
            metrics = {k.partition(".")[2]: data[k] for k in data.files if k.startswith("metric.")}
            evals = {k.partition(".")[2]: data[k] for k in data.files if k.startswith("eval.")}
        return prng.from_data(state, abstract_state), metrics, evals


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def train(
    config: Config,
    num_seeds: int | None = None,
    seed: int = 0,
    keys: jax.Array | None = None,
    chunk_size: int | None = None,
    results_dir: str | Path | None = None,
    hparams: HyperParams | None = None,
    env=None,
    env_params=None,
    devices=None,
    seed_start: int = 0,
    on_chunk: Callable[[int, int, float], None] | None = None,
    progress_fn: Callable[[int, dict], None] | None = None,
    log_every: int = 0,
) -> TrainResult:
    """Train `num_seeds` independent seeds in jitted, vmapped calls.

    `keys` (shape [num_seeds]) overrides `seed` and `seed_start` (and `num_seeds`, which
    must then be left out or equal their count; without keys it defaults to 1); seed i always gets
    `seed_keys(seed, n)[i]`, and with `seed_start` K the run trains seeds K..K+num_seeds-1
    (`seed_keys(seed, num_seeds, start=K)`: one range of a run split across jobs).
    When the seeds would not fit in device memory (estimate, see memory.py), they run in
    sequential chunks of `chunk_size` seeds (automatic unless given); a seed's result does
    not depend on the chunk it ran in. With `results_dir`, every finished chunk is written
    there at once, and a rerun of the same run loads finished chunks instead of training
    them again; a directory of another run, of other code or of other files is refused
    before compiling. Compile time and run time are measured separately. Seeds whose
    metrics or parameters become non-finite are flagged in `diverged_at`.

    `hparams` (a sweep) gives each run its own numeric hyperparameters: a HyperParams
    whose leaves are arrays of shape [num_seeds], aligned with the keys; the config's
    values of those fields are then ignored.

    `env`/`env_params`: train this environment object (any that honours the contract in
    envs/__init__.py) instead of building config.env_id, which then only names the run.
    Nothing is registered; for a run a new process can resume, use an import-path env_id.

    `devices`: where the seeds run (placement.select: None or "all" for every device of the
    run, N for the first N, or a list of jax.Device); the seed axis is split over them
    (one-axis mesh), chunks are per device, and seed i's result does not depend on the
    device count.

    `on_chunk(seeds_done, num_seeds, seconds)`: after the compile (0, num_seeds, compile
    seconds) and after every chunk, trained or loaded: where a caller shows progress.
    `progress_fn(env_steps, metrics)`: after every block of `log_every` updates (0: about
    a fiftieth of the run) of every chunk, with the env steps per seed done in that chunk
    and the block's metrics and new evaluations, name -> [chunk seeds, ...]. Without it the
    whole run of a chunk is one block: one compiled call. Neither changes what is computed.
    """
    _refuse_under_a_trace(keys)
    if keys is None:
        keys = prng.seed_keys(seed, 1 if num_seeds is None else num_seeds, start=seed_start)
    else:
        keys = prng.check_keys(keys)
        seed_start = 0  # given keys name no range (result.seed_start)
        if num_seeds is not None and num_seeds != keys.shape[0]:
            raise ValueError(f"num_seeds: {num_seeds}, but keys holds {keys.shape[0]} keys (one per seed); "
                             "give keys alone, or num_seeds (and seed) alone.")
    num_seeds = int(keys.shape[0])
    require_int("log_every", log_every, low=0)
    mesh = placement.mesh(devices)
    if env is None:
        agent = driver.prepare(config)
    else:  # not cached: the environment object is not part of the config
        agent = Agent.build(config.validate(own_env=True), env=env, env_params=env_params)
    checked = None if hparams is None else _checked_hparams(hparams, num_seeds, config)
    count = mesh.size
    fit = memory.seeds_that_fit(agent)  # per device
    if chunk_size is None:
        per_device = min(math.ceil(num_seeds / count), fit)
    else:
        require_int("chunk_size", chunk_size, low=1)
        per_device = math.ceil(min(chunk_size, num_seeds) / count)
        if per_device > fit:
            raise ValueError(
                f"chunk_size: at most {fit * count} seeds fit in the memory of {count} device(s) "
                f"({fit} per device, estimate), got {chunk_size}."
            )
    chunk_size = per_device * count  # seeds per call: the last chunk and the mesh padded
    store = None
    if results_dir is not None:  # checked before compiling: a refused dir costs no compile
        store = ChunkStore(results_dir, config, keys, checked)
    # without progress_fn the whole run is one block: one compiled call per chunk
    block = log_every if progress_fn is not None else config.num_updates
    *_, compile_seconds, from_cache = driver.timed_blocks(  # cached: every chunk's session uses it
        agent, chunk_size, session.RunOptions(log_every=block).block(config), mesh,
        sweep=driver.sweep_signature(checked))
    report = on_chunk or (lambda done, total, seconds: None)
    report(0, num_seeds, compile_seconds)

    def on_block(done: int, metrics: dict, evals: dict) -> None:
        progress_fn(done * config.batch_size, {**metrics, **evals})

    parts, run_seconds, loaded, trained = [], 0.0, 0, 0
    shapes = {}  # a chunk's abstract state by its size: one eval_shape trace per size

    def abstract(n: int):
        if n not in shapes:
            shapes[n] = driver.abstract_state(agent, n)
        return shapes[n]

    for first in range(0, num_seeds, chunk_size):
        last = min(first + chunk_size, num_seeds)
        saved = store.load(first, last, abstract(last - first)) if store else None
        if saved is not None:
            parts.append(saved)
            loaded += 1
            report(last, num_seeds, 0.0)
            continue
        start = time.perf_counter()
        options = session.RunOptions(num_seeds=last - first, log_every=block, progress=False)
        part = session.run(config, options, agent=agent, keys=keys[first:last], pad_to=chunk_size, mesh=mesh,
                           hparams=None if checked is None else jax.tree.map(lambda x: x[first:last], checked),
                           on_block=None if progress_fn is None else on_block)
        run_seconds += part.run_seconds
        trained += last - first
        if store:
            store.save(first, last, part)
        parts.append((part.final_state, part.metrics, part.eval_metrics))
        report(last, num_seeds, time.perf_counter() - start)

    final_state, metrics, evals = parts[0] if len(parts) == 1 else (
        jax.tree.map(prng.concatenate, *[p[0] for p in parts]),
        *({k: np.concatenate([p[i][k] for p in parts]) for k in parts[0][i]} for i in (1, 2)),
    )
    return driver.result(
        config, final_state, metrics, evals,
        num_seeds=num_seeds,
        hparams=checked,
        compile_seconds=compile_seconds,
        compile_from_cache=from_cache,
        run_seconds=run_seconds,
        chunk_size=chunk_size,
        chunks_loaded=loaded,
        seeds_trained=trained,
        devices=count,
        env=env,
        env_params=env_params,
        seed_start=seed_start,
        agent=agent,
    )


def _refuse_under_a_trace(keys) -> None:
    """ValueError when `train` is called inside jax.jit / vmap / grad: it is a host function
    (it compiles, times and runs the program), which a trace cannot hold."""
    traced = isinstance(keys, jax.core.Tracer)
    try:  # jax's private way to ask; a jax without it leaves the check to the keys
        from jax._src import core as jax_core

        traced = traced or not jax_core.trace_state_clean()
    except (ImportError, AttributeError):
        pass
    if traced:
        raise ValueError(
            "train: purejaxvpg.train is a host function (it compiles, times and runs the program) and cannot "
            "run inside jax.jit, vmap or grad; trace the pure function instead: "
            "jax.jit(jax.vmap(purejaxvpg.make_train(config)))(keys)."
        )


def _checked_hparams(hparams, num_seeds: int, config: Config) -> HyperParams:
    """A sweep's HyperParams with leaves as arrays [num_seeds], every element in its
    Config field's range (config.check_hyperparameter); ValueError naming
    `hparams.<field>` otherwise. Runs before anything compiles. A greedy-schedule end left
    None takes the config's value, and stays None (no leaf: the schedule off) if that is 0."""
    if not isinstance(hparams, HyperParams):
        raise ValueError(f"hparams: must be a purejaxvpg.HyperParams, got {type(hparams).__name__}.")
    leaves = {}
    for name in SWEEPABLE:
        label = f"hparams.{name}"
        if getattr(hparams, name) is None and name in ("greedy_start", "greedy_end"):
            value = getattr(config, name)
            leaves[name] = None if value == 0 else jnp.full((num_seeds,), value, jnp.float32)
            continue
        leaf = np.asarray(getattr(hparams, name))
        if leaf.shape != (num_seeds,):
            raise ValueError(f"{label}: must have shape ({num_seeds},), got {leaf.shape}.")
        if leaf.dtype.kind not in "biuf":
            raise ValueError(f"{label}: must hold numbers, got dtype {leaf.dtype}.")
        for value in np.unique(leaf):  # a sweep holds few distinct values
            check_hyperparameter(name, value.item(), label)
        leaves[name] = jnp.asarray(leaf)
    return HyperParams(**leaves)
