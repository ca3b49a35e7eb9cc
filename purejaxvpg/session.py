"""A run on the host: the compiled updates in blocks, with progress, checkpoints and resume.

`purejaxvpg.train` is one call for the whole run. A session runs the same pure update
(`train.Program.run`) in blocks of `log_every` updates, all vmapped over seeds and
compiled once, so between blocks the host can show progress (steps/s, ETA) and write
checkpoints. The state stays on the device between blocks; only the per-update metrics
[num_seeds, log_every] come back. An interrupted session resumed from its last checkpoint
ends with exactly the metrics of one that never stopped (same blocks, same state).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from purejaxvpg import memory
from purejaxvpg.checkpoint import Checkpoints
from purejaxvpg.config import Config, require_int
from purejaxvpg.train import HyperParams, Program, TrainResult, seed_keys, setup, split_metrics

DEFAULT_REFRESHES = 50  # progress refreshes per run when log_every is not given


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a session runs (not what it learns: that is the Config)."""

    num_seeds: int = 8
    seed: int = 0
    log_every: int = 0  # updates per block (progress refresh); 0: num_updates / 50
    checkpoint_every: int = 0  # updates between checkpoints; 0: only the final one
    progress: bool = True  # draw a progress bar on stderr

    def validate(self) -> "RunOptions":
        require_int("num_seeds", self.num_seeds, low=1)
        require_int("seed", self.seed, low=0)
        require_int("log_every", self.log_every, low=0)
        require_int("checkpoint_every", self.checkpoint_every, low=0)
        return self

    def block(self, config: Config) -> int:
        """Updates per compiled block."""
        if self.log_every:
            return min(self.log_every, config.num_updates)
        return max(1, math.ceil(config.num_updates / DEFAULT_REFRESHES))


class Progress:
    """A rich progress bar on stderr: env steps per seed, steps/s over all seeds, ETA."""

    def __init__(self, total_steps: int, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = RichProgress(
            TextColumn("{task.percentage:>3.0f}%"), BarColumn(bar_width=20),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False,
        )
        self.task = self.bar.add_task("train", total=total_steps, rate="")
        self.bar.start()

    def advance(self, steps_done: int, steps_per_second: float) -> None:
        if self.enabled:
            self.bar.update(
                self.task, completed=steps_done, rate=f"{steps_per_second:,.0f} env steps/s"
            )

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()


def run(
    config: Config,
    options: RunOptions = RunOptions(),
    run_dir: str | Path | None = None,
    resume: bool = False,
    stop_after: int | None = None,
) -> TrainResult:
    """Train `options.num_seeds` seeds in blocks; checkpoint into `run_dir/checkpoints`.

    resume: continue from run_dir's newest checkpoint (a fresh start if there is none).
    stop_after: stop once this many updates are done (after checkpointing) — what an
    interruption looks like; the returned result then covers only those updates.
    """
    config.validate()
    options.validate()
    s = setup(config)
    fit = memory.seeds_that_fit(config, s.obs_shape, s.spec.size)
    if options.num_seeds > fit:
        raise ValueError(
            f"num_seeds: at most {fit} seeds fit in device memory (estimate) for a session; "
            f"got {options.num_seeds}. purejaxvpg.train() runs more in sequential chunks."
        )
    block = options.block(config)
    keys = seed_keys(options.seed, options.num_seeds)
    start = time.perf_counter()
    init, step, abstract = _compiled(config, options.num_seeds, block)
    compile_seconds = time.perf_counter() - start  # ~0 when this process compiled it before

    checkpoints = Checkpoints(run_dir) if run_dir is not None else None
    done, parts = 0, []
    if resume and checkpoints is not None and checkpoints.latest() is not None:
        done, state, saved = checkpoints.restore(abstract)
        parts.append(saved)
    else:
        state = init(keys)

    U = config.num_updates
    stop = U if stop_after is None else min(U, stop_after)
    progress = Progress(U * config.batch_size, options.progress and done < stop)
    progress.advance(done * config.batch_size, 0.0)
    run_seconds, first_done, last_saved = 0.0, done, done
    try:
        while done < stop:
            start = time.perf_counter()
            state, metrics = step(state, jnp.int32(done))
            valid = min(block, U - done)
            metrics = {k: np.asarray(v)[:, :valid] for k, v in metrics.items()}  # waits for the block
            run_seconds += time.perf_counter() - start
            parts.append(metrics)
            done += valid
            rate = options.num_seeds * (done - first_done) * config.batch_size / run_seconds
            progress.advance(done * config.batch_size, rate)
            if checkpoints is not None and options.checkpoint_every and (
                done - last_saved >= options.checkpoint_every and done < U
            ):
                checkpoints.save(done, state, _join(parts))
                last_saved = done
    finally:
        progress.close()
    metrics = _join(parts)
    if checkpoints is not None:
        if done > last_saved or checkpoints.latest() is None:
            checkpoints.save(done, state, metrics)
        checkpoints.close()

    train_metrics, eval_metrics = split_metrics(config, _truncate(metrics, done))
    return TrainResult(
        config=config,
        num_seeds=options.num_seeds,
        metrics=train_metrics,
        eval_metrics=eval_metrics,
        final_state=state,
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
        chunk_size=options.num_seeds,
        seeds_trained=options.num_seeds,
        updates_trained=done - first_done,  # a resumed run trained only the rest
    )


@functools.lru_cache(maxsize=8)
def _compiled(config: Config, num_seeds: int, block: int):
    """(init, step, abstract state) compiled for num_seeds seeds and blocks of `block`
    updates; cached, so resuming or rerunning in one process does not compile again."""
    program, hp = Program(setup(config)), HyperParams.from_config(config)
    keys = seed_keys(0, num_seeds)  # only shapes matter here
    init = jax.jit(jax.vmap(lambda key: program.init(key, hp)))
    step = jax.jit(
        jax.vmap(lambda state, first: program.run(state, hp, first, block), in_axes=(0, None)),
        donate_argnums=0 if jax.default_backend() != "cpu" else (),  # CPU cannot donate
    )
    abstract = jax.eval_shape(init, keys)
    return init.lower(keys).compile(), step.lower(abstract, jnp.int32(0)).compile(), abstract


def abstract_state(config: Config, num_seeds: int):
    """Shapes and dtypes of the batched TrainState of `num_seeds` seeds (no compile):
    what a checkpoint is restored into."""
    program, hp = Program(setup(config)), HyperParams.from_config(config)
    return jax.eval_shape(jax.vmap(lambda key: program.init(key, hp)), seed_keys(0, num_seeds))


def _join(parts: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}


def _truncate(metrics: dict, updates: int) -> dict:
    return {k: v[:, :updates] for k, v in metrics.items()}


def evaluate_run(run_dir: str | Path, episodes: int = 32, seed: int = 0) -> dict:
    """Greedy and stochastic episodes of every seed of a run's newest checkpoint, in one
    jitted, vmapped call. Writes and returns the record of RUN_DIR/eval.json: per mode,
    each seed's mean return, the mean episode length and IQM / mean / median with CIs."""
    import json

    from purejaxvpg import rundir, stats
    from purejaxvpg.evaluate import make_evaluate

    require_int("episodes", episodes, low=1)
    config, run = rundir.read_config(Path(run_dir))
    num_seeds = run.get("num_seeds", 1)
    checkpoints = Checkpoints(run_dir)
    if checkpoints.latest() is None:
        raise ValueError(f"run_dir: {run_dir} has no checkpoint to evaluate.")
    updates_done, state, _ = checkpoints.restore(abstract_state(config, num_seeds))
    checkpoints.close()
    evaluate = jax.jit(jax.vmap(make_evaluate(config, setup(config).actor, episodes)))
    eval_keys = jax.random.split(jax.random.key(seed), num_seeds)
    out = {k: np.asarray(v) for k, v in evaluate(state.actor_params, state.runner.env_state, eval_keys).items()}

    record = {"run_dir": str(run_dir), "env_id": config.env_id, "num_seeds": num_seeds,
              "updates_done": updates_done, "episodes_per_seed": episodes, "seed": seed}
    for mode in ("greedy", "stochastic"):
        returns = out[f"eval_return_{mode}"]  # [num_seeds], each the mean of `episodes`
        record[mode] = {
            "return_per_seed": returns.tolist(),
            "mean_length": float(out[f"eval_length_{mode}"].mean()),
            **{name: dataclasses.asdict(i) for name, i in stats.aggregate(returns).items()},
        }
    (Path(run_dir) / "eval.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
