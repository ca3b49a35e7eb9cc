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

from purejaxvpg.algo import prng
from purejaxvpg.algo.policy import seed_policy
from purejaxvpg.algo.program import Agent
from purejaxvpg.checks import require_int
from purejaxvpg.config import Config
from purejaxvpg.host import driver, placement, rundir
from purejaxvpg.host.checkpoint import Checkpoints, check_identity, steps


def rebuilt_agent(config: Config, run_dir: Path, env=None, env_params=None, instead: str = ""):
    """The Agent of a run directory's config: its environment built from config.env_id, or
    `env`/`env_params` when given. An environment that cannot be built in this process (an
    import path that does not import here, a suite whose extra is missing, a name registered
    only in the process that trained) is a one-line ValueError saying why and, `instead`,
    what to pass."""
    if env is not None:
        return Agent.build(config.validate(own_env=True), env=env, env_params=env_params)
    try:
        return driver.prepare(config)
    except ValueError as error:
        text = str(error)
        if not text.startswith("env_id"):
            raise
        why = text.partition(": ")[2].split(" Registered ids:")[0].rstrip(". ")
        raise ValueError(
            f"env_id: the environment of {run_dir} ({config.env_id!r}) cannot be rebuilt in this process "
            f"({why}). {instead}"
        ) from None


def restore_latest(run_dir: str | Path, seed: int | None = None, what: str = "load", env=None,
                   env_params=None, instead: str = ""):
    """(config, num_seeds, updates_done, batched TrainState, Agent) of the newest intact
    checkpoint of the run in `run_dir`. ValueError for a missing directory, one without a
    run or a checkpoint, a `seed` the run does not have, or an environment that cannot be
    rebuilt (rebuilt_agent), before anything is restored."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ValueError(f"run_dir: {run_dir} does not exist.")
    config, run = rundir.read_config(run_dir)
    num_seeds = run.get("num_seeds", 1)
    if seed is not None:
        require_int("seed", seed, low=0, high=num_seeds - 1)
    if not steps(run_dir):
        raise ValueError(f"run_dir: {run_dir} has no checkpoint to {what}.")
    # before anything is rebuilt from config.json: it must be the run the checkpoints hold
    check_identity(run_dir, config, run.get("seed", 0), run.get("seed_start", 0), num_seeds, "run_dir")
    agent = rebuilt_agent(config, run_dir, env, env_params, instead)
    checkpoints = Checkpoints(run_dir)  # the newest intact checkpoint (a damaged one is named)
    try:
        updates_done, state, _ = checkpoints.restore(driver.abstract_state(agent, num_seeds),
                                                      eval_every=config.eval_every)
    finally:
        checkpoints.close()
    return config, num_seeds, updates_done, state, agent


def load_policy(run_dir: str | Path, seed: int = 0, env=None, env_params=None, allow_diverged: bool = False):
    """`act(obs, key=None)` of seed `seed` of the run in `run_dir` (written by `purejaxvpg
    train`), from its newest intact checkpoint and its config.json (see restore_latest).
    `env`/`env_params`: the environment object to act in, for a run whose environment this
    process cannot build from its env_id. A seed that diverged (config.json's results name
    the update; or its checkpointed parameters are not finite) is refused unless
    `allow_diverged`."""
    instead = ("Pass the environment object: load_policy(run_dir, seed, env=ENV, env_params=PARAMS), "
               "or make it buildable here (its module on PYTHONPATH, its extra installed).")
    _, num_seeds, _, state, agent = restore_latest(run_dir, seed, "load a policy from", env, env_params, instead)
    results = rundir.read_info(run_dir).get("results") or {}
    at = ((results.get("diverged") or {}).get("at_update") or {}).get(str(seed), -1)
    return seed_policy(agent, state, num_seeds, seed, diverged_at=int(at), allow_diverged=allow_diverged)


def evaluate_run(run_dir: str | Path, episodes: int = 32, seed: int = 0, devices=None, env=None,
                 env_params=None, max_steps: int | None = None) -> dict:
    """Greedy and stochastic episodes of every seed of a run's newest checkpoint, in one
    jitted, vmapped call split over `devices` (placement.select; None: every device). Writes
    and returns the record of RUN_DIR/eval.json: per mode, each seed's mean return, the
    mean episode length and IQM / mean / median with CIs. `env`/`env_params`: as in
    load_policy. max_steps: cut each episode there (None: the run's eval_max_steps; 0, as
    in eval_max_steps: the environment's time limit, capped)."""
    from purejaxvpg.algo.evaluate import eval_steps, make_evaluate  # looked up now: tests record its keys
    from purejaxvpg.config import EVAL_STEPS_CAP
    from purejaxvpg.report import stats

    require_int("episodes", episodes, low=1)
    if max_steps is not None:
        require_int("max_steps", max_steps, low=0, high=EVAL_STEPS_CAP)  # 0: as eval_max_steps
    mesh = placement.mesh(devices)
    instead = ("Run `purejaxvpg eval` where it can be built (its module on PYTHONPATH, its extra installed), "
               "or evaluate from Python: purejaxvpg.host.policy.evaluate_run(run_dir, env=ENV, env_params=PARAMS).")
    config, num_seeds, updates_done, state, agent = restore_latest(run_dir, what="evaluate", env=env,
                                                                   env_params=env_params, instead=instead)
    if max_steps is not None:
        config = dataclasses.replace(config, eval_max_steps=max_steps)
    evaluate = jax.vmap(make_evaluate(config, agent.actor, agent.stack_of(episodes)))
    # eval keys: disjoint from the training keys; everything crosses the mesh as plain arrays
    start = rundir.read_config(run_dir)[1].get("seed_start", 0)  # a seed range: its global seeds' keys
    typed = (state.actor_params, state.runner.env_state, prng.eval_keys(seed, num_seeds, start=start))
    inputs = placement.pad(jax.tree.map(np.asarray, prng.to_data(typed)), placement.padded(num_seeds, mesh.size))
    run = jax.jit(placement.over_seeds(lambda *data: evaluate(*prng.from_data(data, typed)), mesh))
    out = jax.tree.map(lambda x: x[:num_seeds], placement.gather(run(*placement.shard(inputs, mesh)).as_dict()))

    record = {"run_dir": str(run_dir), "env_id": config.env_id, "num_seeds": num_seeds,
              "updates_done": updates_done, "episodes_per_seed": episodes, "seed": seed,
              "max_steps": eval_steps(config, agent.stack),
              "seeds": list(range(start, start + num_seeds))}  # return_per_seed[i] is global seed seeds[i]
    for mode in ("greedy", "stochastic"):
        returns = np.asarray(out[f"eval_return_{mode}"])  # [num_seeds], each the mean of `episodes`
        record[mode] = {
            "return_per_seed": returns.tolist(),
            "mean_length": float(np.mean(out[f"eval_length_{mode}"])),
            **{name: dataclasses.asdict(i) for name, i in stats.aggregate(returns).items()},
        }
    rundir.write_json(Path(run_dir) / "eval.json", record)  # NaN/inf as null
    return record
