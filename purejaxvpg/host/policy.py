"""A trained run used outside training, from a TrainResult or from a run directory's
newest intact checkpoint: a seed's policy `act(obs, key=None)` (`result.policy(seed)`,
`purejaxvpg.load_policy(run_dir, seed)`; algo/policy.py) and `purejaxvpg eval`'s
evaluation of every seed (`evaluate_run`).

    act = purejaxvpg.load_policy("runs/cartpole", seed=3)
    action = int(act(obs))           # greedy; act(obs, key) samples
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

import envs
from purejaxvpg.algo import keys as prng
from purejaxvpg.algo.policy import make_policy
from purejaxvpg.config import Config, require_int
from purejaxvpg.host import devices as placement
from purejaxvpg.host import driver, rundir
from purejaxvpg.host.checkpoint import Checkpoints, steps


def seed_policy(config: Config, state, num_seeds: int, seed: int = 0):
    """`act` of seed `seed` of a batched TrainState [num_seeds, ...]: its actor parameters
    and observation statistics. ValueError naming `seed` unless it is in [0, num_seeds - 1]."""
    seed = require_int("seed", seed, low=0, high=num_seeds - 1)
    take = lambda tree: jax.tree.map(lambda x: x[seed], tree)  # noqa: E731
    stats = envs.observation_stats(state.runner.env_state)
    return make_policy(config, take(state.actor_params), None if stats is None else take(stats))


def restore_latest(run_dir: str | Path, seed: int | None = None, what: str = "load"):
    """(config, num_seeds, updates_done, batched TrainState) of the newest intact checkpoint
    of the run in `run_dir`. ValueError for a missing directory, one without a run or a
    checkpoint, or a `seed` the run does not have, before anything is restored."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ValueError(f"run_dir: {run_dir} does not exist.")
    config, run = rundir.read_config(run_dir)
    num_seeds = run.get("num_seeds", 1)
    if seed is not None:
        require_int("seed", seed, low=0, high=num_seeds - 1)
    if not steps(run_dir):
        raise ValueError(f"run_dir: {run_dir} has no checkpoint to {what}.")
    checkpoints = Checkpoints(run_dir)  # the newest intact checkpoint (a damaged one is named)
    try:
        updates_done, state, _ = checkpoints.restore(driver.abstract_state(config, num_seeds),
                                                      eval_every=config.eval_every)
    finally:
        checkpoints.close()
    return config, num_seeds, updates_done, state


def load_policy(run_dir: str | Path, seed: int = 0):
    """`act(obs, key=None)` of seed `seed` of the run in `run_dir` (written by `purejaxvpg
    train`), from its newest intact checkpoint and its config.json (see restore_latest)."""
    config, num_seeds, _, state = restore_latest(run_dir, seed, "load a policy from")
    return seed_policy(config, state, num_seeds, seed)


def evaluate_run(run_dir: str | Path, episodes: int = 32, seed: int = 0, devices=None) -> dict:
    """Greedy and stochastic episodes of every seed of a run's newest checkpoint, in one
    jitted, vmapped call split over `devices` (devices.select; None: every device). Writes
    and returns the record of RUN_DIR/eval.json: per mode, each seed's mean return, the
    mean episode length and IQM / mean / median with CIs."""
    from purejaxvpg.algo.evaluate import make_evaluate  # looked up now: tests record its keys
    from purejaxvpg.report import stats

    require_int("episodes", episodes, low=1)
    mesh = placement.mesh(devices)
    config, num_seeds, updates_done, state = restore_latest(run_dir, what="evaluate")
    evaluate = jax.vmap(make_evaluate(config, driver.prepare(config).actor, episodes))
    # eval keys: disjoint from the training keys; everything crosses the mesh as plain arrays
    start = rundir.read_config(run_dir)[1].get("seed_start", 0)  # a seed range: its global seeds' keys
    typed = (state.actor_params, state.runner.env_state, prng.eval_keys(seed, num_seeds, start=start))
    inputs = placement.pad(jax.tree.map(np.asarray, prng.to_data(typed)), placement.padded(num_seeds, mesh.size))
    run = jax.jit(placement.over_seeds(lambda *data: evaluate(*prng.from_data(data, typed)), mesh))
    out = jax.tree.map(lambda x: x[:num_seeds], placement.gather(run(*placement.shard(inputs, mesh)).as_dict()))

    record = {"run_dir": str(run_dir), "env_id": config.env_id, "num_seeds": num_seeds,
              "updates_done": updates_done, "episodes_per_seed": episodes, "seed": seed}
    for mode in ("greedy", "stochastic"):
        returns = np.asarray(out[f"eval_return_{mode}"])  # [num_seeds], each the mean of `episodes`
        record[mode] = {
            "return_per_seed": returns.tolist(),
            "mean_length": float(np.mean(out[f"eval_length_{mode}"])),
            **{name: dataclasses.asdict(i) for name, i in stats.aggregate(returns).items()},
        }
    rundir.write_json(Path(run_dir) / "eval.json", record)  # NaN/inf as null
    return record
