"""A run on the host: the compiled updates in blocks, with progress, checkpoints and resume.

`purejaxvpg.train` is one call for the whole run. A session runs the same pure program
(`algo.program.run`, compiled by `driver.compile_blocks`) in blocks of `log_every` updates,
all vmapped over seeds, so between blocks the host can show progress (steps/s, ETA) and write
checkpoints. The state stays on the device between blocks; only the per-update metrics
[num_seeds, log_every] come back. An interrupted session resumed from its last checkpoint
ends with exactly the metrics of one that never stopped (same blocks, same state).

Nothing is lost: checkpoints are on by default (about every tenth of the run), and SIGINT
(Ctrl-C) or SIGTERM (what a cluster sends before it kills a job) lets the running block
finish, checkpoints it and raises `Interrupted`; a second signal stops at once.

The signal handling is watchdog.FinishTheBlock's, the progress bar progress.Progress's.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from purejaxvpg.algo import prng
from purejaxvpg.algo.metrics import EVAL_METRIC_NAMES, METRIC_NAMES
from purejaxvpg.algo.program import Agent
from purejaxvpg.checks import require_int
from purejaxvpg.config import Config
from purejaxvpg.host import distributed, driver, memory, placement, watchdog
from purejaxvpg.host.checkpoint import Checkpoints, check_identity, identity
from purejaxvpg.host.driver import TrainResult
from purejaxvpg.host.progress import Progress
from purejaxvpg.host.watchdog import Interrupted  # session.Interrupted: what run raises

DEFAULT_REFRESHES = 50  # progress refreshes per run when log_every is not given
DEFAULT_CHECKPOINTS = 10  # checkpoints per run when checkpoint_every is not given


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a session runs (not what it learns: that is the Config)."""

    num_seeds: int = 8
    seed: int = 0
    # the run trains seeds seed_start..seed_start+num_seeds-1 of `seed`'s key sequence
    # (keys.seed_keys): ranges trained apart combine with `purejaxvpg merge`
    seed_start: int = 0
    log_every: int = 0  # updates per block (progress refresh); 0: num_updates / 50
    # updates between checkpoints; None: about a tenth of the run in whole blocks
    # (`checkpoint_interval`); 0: only the final one (and on interruption)
    checkpoint_every: int | None = None
    progress: bool = True  # draw a progress bar on stderr
    # where the seeds run (placement.select): "all" devices of the run, or the first N; the
    # results do not depend on it, so a resumed run may change it
    devices: str | int = "all"
    # seeds per session of a CLI run (seed_ranges.py): None, all at once when they fit in
    # device memory (estimate), else as many as fit; fewer than num_seeds: the seeds train
    # in sequential chunks, each a sub-run of the run directory, joined at the end
    chunk_size: int | None = None

    def validate(self) -> RunOptions:
        require_int("num_seeds", self.num_seeds, low=1)
        if self.chunk_size is not None:
            require_int("chunk_size", self.chunk_size, low=1)
        placement.select(self.devices)
        require_int("seed", self.seed, low=0, high=prng.MAX_SEED)
        prng.seed_range(self.num_seeds, self.seed_start)
        require_int("log_every", self.log_every, low=0)
        if self.checkpoint_every is not None:
            require_int("checkpoint_every", self.checkpoint_every, low=0)
        return self

    def checkpoint_interval(self, config: Config) -> int:
        """Updates between checkpoints (0: only at the end). By default the largest whole
        number of blocks within a tenth of the run (at least one block), so `kill -9` loses
        at most ~10% of the updates (one block when blocks are longer than that)."""
        if self.checkpoint_every is not None:
            return self.checkpoint_every
        block = self.block(config)
        return block * max(1, math.ceil(config.num_updates / DEFAULT_CHECKPOINTS) // block)

    def block(self, config: Config) -> int:
        """Updates per compiled block; with evaluations, a whole number of eval_every
        periods (log_every rounded up), so each block returns whole evaluations."""
        if self.log_every:
            block = min(self.log_every, config.num_updates)
        else:
            block = max(1, math.ceil(config.num_updates / DEFAULT_REFRESHES))
        if config.eval_every:
            block = config.eval_every * math.ceil(block / config.eval_every)
        return block


def check_resume(run_dir: Path, config: Config, options: RunOptions) -> None:
    """ValueError unless config.json and its options describe the run its checkpoints hold
    (checkpoint.check_identity): a config.json edited by hand would relabel seeds or mix
    two runs. Compiles nothing."""
    check_identity(run_dir, config, options.seed, options.seed_start, options.num_seeds, "resume",
                   "or train a new run with another --out")


def run(
    config: Config,
    options: RunOptions = RunOptions(),
    run_dir: str | Path | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[TrainResult], None] | None = None,
    on_block: Callable[[int, dict, dict], None] | None = None,
    agent: Agent | None = None,
    keys: jax.Array | None = None,
    hparams=None,
    pad_to: int | None = None,
    mesh=None,
) -> TrainResult:
    """Train `options.num_seeds` seeds in blocks; checkpoint into `run_dir/checkpoints`.

    resume: continue from run_dir's newest intact checkpoint (from update 0 if there is
    none). Without it, a run_dir that already holds checkpoints is refused (before compiling).
    stop_after: stop once this many updates are done (after checkpointing) — what an
    interruption looks like; the returned result then covers only those updates.
    on_start(updates_done): called once every check has passed and the program compiled,
    before the first block: where the caller writes its own record of the run.
    on_result(result): called before the final checkpoint is written, so the caller's
    metrics files are on disk before anything else that can fail.
    on_block(updates_done, metrics, evals): after every block, before its checkpoint, with
    that block's metrics name -> [num_seeds, updates] and the evaluations it completed
    name -> [num_seeds, evals] (empty without eval_every): where loggers write (loggers.py).
    agent: what `check(config, options)` returned (the caller checked before it wrote
    anything); None: checked here.
    For `purejaxvpg.train` (chunks.py), which runs each chunk of seeds as a session
    without a run directory: `keys` [num_seeds] instead of options' seed range; `hparams`,
    a sweep's HyperParams with [num_seeds] leaves (checked); `pad_to` seeds (a last,
    smaller chunk reuses the first one's compiled program); `mesh` instead of options.devices.
    Raises Interrupted on SIGINT / SIGTERM once the running block is checkpointed.
    """
    agent = check(config, options) if agent is None else agent
    if run_dir is not None and not resume:
        from purejaxvpg.host.checkpoint import steps

        if steps(run_dir):
            raise ValueError(
                f"run_dir: {run_dir} already holds checkpoints (updates {steps(run_dir)}) of "
                "another run; pass resume=True to continue it, or pick another directory."
            )
    block = options.block(config)
    every = options.checkpoint_interval(config)
    if keys is None:
        keys = prng.seed_keys(options.seed, options.num_seeds, start=options.seed_start)
    mesh = placement.mesh(options.devices) if mesh is None else mesh
    n = options.num_seeds
    padded = pad_to or placement.padded(n, mesh.size)
    # a sweep's hyperparameters ride along every call, laid out like the seeds
    hp = () if hparams is None else (placement.shard(placement.pad(hparams, padded), mesh),)
    init, step, compile_seconds, from_cache = driver.timed_blocks(
        agent, padded, block, mesh, sweep=driver.sweep_signature(hparams))
    abstract = driver.abstract_state(agent, n)  # what a checkpoint holds: the n seeds, typed

    def on_host(state):
        """The n seeds' state on the host in key-data form (the padding dropped): what a
        checkpoint saves and the result holds, whatever the device layout."""
        return jax.tree.map(lambda x: x[:n], placement.gather(state))

    checkpoints = Checkpoints(run_dir) if run_dir is not None else None
    run = identity(config, options.seed, options.seed_start, options.num_seeds)  # saved with every checkpoint
    done, parts, eval_parts = 0, [], []
    if resume and checkpoints is not None and checkpoints.latest() is not None:
        done, state, saved = checkpoints.restore(abstract, set_aside_damaged=True,
                                                   eval_every=config.eval_every)
        parts.append({k: v for k, v in saved.items() if k in METRIC_NAMES})
        eval_parts.append({k: v for k, v in saved.items() if k in EVAL_METRIC_NAMES})
        state = placement.shard(placement.pad(prng.to_data(state), padded), mesh)
    else:
        state = init(placement.shard(placement.pad(placement.host_keys(keys), padded), mesh), *hp)
    if on_start is not None:
        on_start(done)

    U = config.num_updates
    stop = U if stop_after is None else min(U, stop_after)
    progress = Progress(U * config.batch_size, options.progress and done < stop)
    progress.advance(done * config.batch_size, 0.0)
    run_seconds, first_done, last_saved = 0.0, done, done
    try:
        with watchdog.FinishTheBlock(enabled=checkpoints is not None) as signals:
            # several processes stop after the same block: on the signal any of them got, all-gathered
            several, agreed = distributed.is_distributed(), None

            def stopping() -> int | None:
                return agreed if several else signals.received

            while done < stop and stopping() is None:
                start = time.perf_counter()
                state, metrics, evals = step(state, jnp.int32(done), *hp)
                valid = min(block, U - done)
                metrics, evals = placement.gather((metrics.as_dict(), evals.as_dict()))  # waits
                agreed = distributed.first_signal(signals.received) if several else None
                parts.append({k: v[:n, :valid] for k, v in metrics.items()})
                run_seconds += time.perf_counter() - start
                if config.eval_every:
                    eval_parts.append({k: v[:n] for k, v in evals.items()})
                done += valid
                rate = options.num_seeds * (done - first_done) * config.batch_size / run_seconds
                progress.advance(done * config.batch_size, rate)
                if on_block is not None:
                    every_eval = config.eval_every or done + 1  # no evaluations: none new
                    new = done // every_eval - (done - valid) // every_eval
                    new_evals = {k: v[:, :new] for k, v in eval_parts[-1].items()} if new else {}
                    on_block(done, parts[-1], new_evals)
                if checkpoints is not None and done < U and (
                    stopping() is not None or (every and done - last_saved >= every)
                ):
                    try:
                        checkpoints.save(done, on_host(state), _history(config, parts, eval_parts, done), run)
                    except OSError as error:  # e.g. a full disk: the run goes on, the next one retries
                        print(f"purejaxvpg: warning: {error}; training goes on", file=sys.stderr)
                    last_saved = done
    except BaseException:
        _close_quietly(checkpoints)
        raise
    finally:
        progress.close()
    if stopping() is not None and done < U:
        if checkpoints is not None:
            checkpoints.close()
        raise Interrupted(stopping(), done)

    history = _history(config, parts, eval_parts, done)
    state = prng.from_data(on_host(state), abstract)
    result = driver.result(
        config, state, _join(parts), _join(eval_parts), done,
        num_seeds=options.num_seeds,
        compile_seconds=compile_seconds,
        compile_from_cache=from_cache,
        run_seconds=run_seconds,
        chunk_size=options.num_seeds,
        seeds_trained=options.num_seeds,
        updates_trained=done - first_done,  # a resumed run trained only the rest
        devices=mesh.size,
        seed_start=options.seed_start,
        hparams=hparams,
        agent=agent,
    )
    try:
        if on_result is not None:
            on_result(result)
        if checkpoints is not None and (
            done > last_saved or (done == first_done and checkpoints.latest() is None)
        ):
            checkpoints.save(done, state, history, run)
    except BaseException:
        _close_quietly(checkpoints)
        raise
    if checkpoints is not None:
        checkpoints.close()  # waits for the files
    return result


def _close_quietly(checkpoints: Checkpoints | None) -> None:
    """On the way out after an error: finish what was saved, report the first error only."""
    if checkpoints is not None:
        try:
            checkpoints.close()
        except Exception:
            pass


def check(config: Config, options: RunOptions) -> Agent:
    """Everything a session refuses, checked without compiling or writing: the config,
    the options and whether the seeds fit in device memory (estimate). Returns the run's
    Agent (its environment built here, once), for `run`."""
    options.validate()
    agent = driver.prepare(config)
    count = len(placement.select(options.devices))
    fit = memory.seeds_that_fit(agent) * count
    if options.num_seeds > fit:
        raise ValueError(
            f"num_seeds: at most {fit} seeds fit in the memory of {count} device(s) (estimate) for a "
            f"session; got {options.num_seeds}. `purejaxvpg train` runs them in sequential chunks "
            f"(--chunk-size {fit} or fewer), purejaxvpg.train() too; or train seed ranges apart "
            f"(--seed-start K --num-seeds {fit}, one run each) and join them with `purejaxvpg merge`."
        )
    return agent


def _join(parts: list[dict]) -> dict[str, np.ndarray]:
    """Blocks of name -> [num_seeds, block] joined along the update axis."""
    parts = [p for p in parts if p]
    return {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]} if parts else {}


def _history(config: Config, parts: list[dict], eval_parts: list[dict], done: int) -> dict:
    """What a checkpoint keeps of the metrics so far: every update's metrics
    [num_seeds, done] and the evaluations those updates completed [num_seeds, evals]."""
    evals = done // config.eval_every if config.eval_every else 0
    return {**{k: v[:, :done] for k, v in _join(parts).items()},
            **{k: v[:, :evals] for k, v in _join(eval_parts).items()}}
