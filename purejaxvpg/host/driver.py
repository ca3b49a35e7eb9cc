"""The host driver: build the program once, check it fits in memory, compile it once,
time it, and run it whole (in chunks of seeds) or in blocks of updates.

Every host path goes through here: `purejaxvpg.train` and sweeps (`train`), the CLI
session with its progress bar and checkpoints (`compile_blocks`, session.py), and the
throughput benchmark (`prepare`, `sharded_run`, `compile_timed`). `TrainResult` is built in one place
(`result`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from purejaxvpg.algo import prng, program
from purejaxvpg.algo.metrics import EvalMetrics, UpdateMetrics
from purejaxvpg.algo.policy import seed_policy
from purejaxvpg.algo.program import Agent, HyperParams, TrainState
from purejaxvpg.checks import require_int
from purejaxvpg.config import SWEEPABLE, Config, check_hyperparameter
from purejaxvpg.host import chunks, memory, placement


@functools.lru_cache(maxsize=8)
def prepare(config: Config) -> Agent:
    """Validate the config (the one place a run does) and build its Agent (no compile).
    Cached: the checks, the session and the compiled blocks of one run share one Agent."""
    return Agent.build(config.validate())


def whole_run(agent: Agent, sweep: bool = False):
    """jit(vmap(one seed's whole run)): f(keys) -> (state, UpdateMetrics, EvalMetrics), or
    with `sweep` f(keys, hparams) with a HyperParams of [num_seeds] leaves."""
    if sweep:
        return jax.jit(jax.vmap(lambda key, hp: program.train(agent, hp, key)))
    const = HyperParams.from_config(agent.config)
    return jax.jit(jax.vmap(lambda key: program.train(agent, const, key)))


def sharded_run(agent: Agent, mesh, sweep: bool = False, impl=None):
    """`whole_run` split over the mesh's seed axis (placement.over_seeds): f(key_data[,
    hparams]) -> to_data((state, UpdateMetrics, EvalMetrics)), every input and output leaf
    [num_seeds, ...] with num_seeds a multiple of the mesh size. `impl`: the keys' PRNG
    implementation (the default one if None)."""
    const = HyperParams.from_config(agent.config)

    def body(key_data, hparams=None):
        keys = jax.random.wrap_key_data(key_data, impl=impl)
        if sweep:
            return prng.to_data(jax.vmap(lambda key, hp: program.train(agent, hp, key))(keys, hparams))
        return prng.to_data(jax.vmap(lambda key: program.train(agent, const, key))(keys))

    return jax.jit(placement.over_seeds(body, mesh))


def _state_shape(agent: Agent, num_seeds: int = 1):
    """Shapes and dtypes of the batched TrainState of `num_seeds` seeds (which leaves are
    PRNG keys), by tracing init only (no compile)."""
    hp = HyperParams.from_config(agent.config)
    return jax.eval_shape(jax.vmap(lambda key: program.init(agent, hp, key)), prng.seed_keys(0, num_seeds))


def compile_timed(jitted, *args):
    """(compiled executable, seconds spent lowering and compiling)."""
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - start


@functools.lru_cache(maxsize=8)
def compile_blocks(agent: Agent, num_seeds: int, block: int, mesh=None):
    """(init, step) for num_seeds seeds (a multiple of the mesh size) in
    blocks of `block` updates, split over the mesh's seed axis (placement.mesh(): every
    device). init(key_data) -> state; step(state, first_update) -> (state, UpdateMetrics
    [block], EvalMetrics [block // eval_every]); the state is in key-data form
    (prng.to_data; `abstract_state` is its typed structure). Cached, so resuming or
    rerunning in one process (one Agent: `prepare` caches it) does not compile again."""
    hp = HyperParams.from_config(agent.config)
    mesh = placement.mesh() if mesh is None else mesh
    typed = _state_shape(agent, num_seeds)

    def init(key_data):
        return prng.to_data(jax.vmap(lambda key: program.init(agent, hp, key))(jax.random.wrap_key_data(key_data)))

    def step(state, first):
        state = prng.from_data(state, typed)
        state, metrics, evals = jax.vmap(lambda s: program.run(agent, hp, s, first, block))(state)
        return prng.to_data(state), metrics, evals

    key_data = placement.abstract(placement.host_keys(prng.seed_keys(0, num_seeds)), mesh)  # shapes only
    init = jax.jit(placement.over_seeds(init, mesh))
    step = jax.jit(
        placement.over_seeds(step, mesh, in_specs=(placement.SPLIT, placement.REPLICATED)),
        donate_argnums=0 if jax.default_backend() != "cpu" else (),  # CPU cannot donate
    )
    state = placement.abstract(jax.eval_shape(init, key_data), mesh)
    return init.lower(key_data).compile(), step.lower(state, jnp.int32(0)).compile()


def abstract_state(agent: Agent | Config, num_seeds: int):
    """Shapes and dtypes of the batched TrainState of `num_seeds` seeds (no compile):
    what a checkpoint is restored into. A Config: its (cached) Agent."""
    return _state_shape(prepare(agent) if isinstance(agent, Config) else agent, num_seeds)


def first_nonfinite_update(config: Config, metrics: dict, eval_metrics: dict, params=None) -> np.ndarray:
    """Per seed, the first update at which a metric (losses, returns, gradient norms,
    evaluations) is NaN or infinite, or the last update if only the final `params` are
    not finite; -1 for a seed that stayed finite. [num_seeds] int.

    metrics: name -> [num_seeds, updates]; eval_metrics: name -> [num_seeds, num_evals],
    evaluation k taken after update (k + 1) * eval_every - 1.
    """
    num_seeds, updates = np.shape(metrics["env_steps"])
    bad = np.zeros((num_seeds, max(updates, 1)), bool)
    for value in metrics.values():
        bad[:, :updates] |= ~np.isfinite(np.asarray(value))
    for value in eval_metrics.values():
        at = (np.arange(np.shape(value)[1]) + 1) * config.eval_every - 1
        bad[:, at] |= ~np.isfinite(np.asarray(value))
    for leaf in jax.tree.leaves(params):
        leaf = np.asarray(leaf)
        if leaf.dtype.kind == "f":
            bad[:, -1] |= ~np.isfinite(leaf.reshape(num_seeds, -1)).all(axis=1)
    return np.where(bad.any(axis=1), bad.argmax(axis=1), -1)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What `purejaxvpg.train` returns. Arrays have a leading [num_seeds] axis."""

    config: Config
    num_seeds: int
    metrics: dict[str, np.ndarray]  # metrics.UpdateMetrics names -> [num_seeds, num_updates]
    final_state: TrainState
    compile_seconds: float
    run_seconds: float  # summed over the chunks trained in this call
    chunk_size: int = 0  # seeds per jitted call
    chunks_loaded: int = 0  # chunks read back from results_dir instead of trained
    seeds_trained: int = 0  # seeds trained in this call (the rest were loaded)
    # with config.eval_every: metrics.EvalMetrics names -> [num_seeds, num_evals]
    eval_metrics: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    hparams: HyperParams | None = None  # a sweep's per-run hyperparameters, [num_seeds] each
    updates_trained: int | None = None  # updates run in this call (None: all of them)
    devices: int = 1  # devices the seed axis was split over
    seed_start: int = 0  # row i is global seed seed_start + i (a seed range, train --seed-start)
    # pjv.train(env=...): the environment object trained on (config.env_id only names it);
    # result.policy acts in it. Not part of the run's identity: left out of ==, repr
    env: object = dataclasses.field(default=None, compare=False, repr=False)
    env_params: object = dataclasses.field(default=None, compare=False, repr=False)
    # the run's Agent (its environment, built once): what result.policy acts with
    agent: Agent | None = dataclasses.field(default=None, compare=False, repr=False)

    @functools.cached_property
    def diverged_at(self) -> np.ndarray:
        """Per seed, the first update with a non-finite metric (or non-finite final
        parameters: the last update); -1 for seeds that stayed finite. [num_seeds] int.
        Diverged seeds are reported and left out of aggregates, never averaged in."""
        return first_nonfinite_update(self.config, self.metrics, self.eval_metrics, self.params)

    @property
    def finite_seeds(self) -> np.ndarray:
        """Boolean mask [num_seeds] of the seeds that did not diverge."""
        return self.diverged_at < 0

    @property
    def eval_env_steps(self) -> np.ndarray:
        """Env steps per seed at each evaluation, [num_evals]."""
        c = self.config
        return np.arange(1, c.num_evals + 1) * c.eval_every * c.batch_size

    @property
    def params(self):
        """Trained (actor, critic) parameters, leading axis num_seeds."""
        return {"actor": self.final_state.actor_params, "critic": self.final_state.critic_params}

    @property
    def env_steps_per_second(self) -> float:
        """All seeds' environment steps over the run time (compile excluded)."""
        updates = self.config.num_updates if self.updates_trained is None else self.updates_trained
        steps = self.seeds_trained * updates * self.config.batch_size
        return steps / self.run_seconds if self.run_seconds > 0 else float("nan")

    def policy(self, seed: int = 0, allow_diverged: bool = False):
        """Seed `seed`'s trained policy as jitted `act(obs, key=None)`: the mode without a
        key, a sample with one; the run's observation statistics applied; actions in the
        environment's own format (algo/policy.py); a run trained on an environment object
        acts through that object. ValueError naming `seed` if out of range, or if it
        diverged (naming the update) unless `allow_diverged`."""
        seed = require_int("seed", seed, low=0, high=self.num_seeds - 1)
        at = int(self.diverged_at[seed])
        agent = self.agent or prepare(self.config)  # a merged result holds none
        return seed_policy(agent, self.final_state, self.num_seeds, seed, diverged_at=at,
                           allow_diverged=allow_diverged)


def result(config: Config, final_state, metrics, evals, updates_done: int | None = None,
           **fields) -> TrainResult:
    """The TrainResult of a run: metrics (UpdateMetrics or name -> [num_seeds, updates]) cut
    to `updates_done`, evaluations (EvalMetrics or name -> [num_seeds, evaluations]) cut to
    the ones those updates completed; `fields` as in TrainResult."""
    as_dict = lambda m: m.as_dict() if isinstance(m, (UpdateMetrics, EvalMetrics)) else m  # noqa: E731
    metrics, evals = as_dict(metrics), as_dict(evals)
    done = np.shape(metrics["env_steps"])[1] if updates_done is None else updates_done
    num_evals = done // config.eval_every if config.eval_every else 0
    return TrainResult(
        config=config,
        final_state=final_state,
        metrics={k: np.asarray(v)[:, :done] for k, v in metrics.items()},
        eval_metrics={k: np.asarray(v)[:, :num_evals] for k, v in evals.items()} if num_evals else {},
        **fields,
    )


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
    them again; a directory of another run, of other code (chunks.py) or of other files is
    refused before compiling. Compile time and run time are measured separately. Seeds
    whose metrics or parameters become non-finite are flagged in `diverged_at`.

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
    mesh = placement.mesh(devices)
    if env is None:
        agent = prepare(config)
    else:  # not cached: the environment object is not part of the config
        agent = Agent.build(config.validate(own_env=True), env=env, env_params=env_params)
    checked = None if hparams is None else _checked_hparams(hparams, num_seeds, config)
    inputs = (placement.host_keys(keys),) if checked is None else (placement.host_keys(keys), checked)
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
    run = sharded_run(agent, mesh, sweep=checked is not None, impl=jax.random.key_impl(keys))

    def take(first, last):
        """Seeds first..last-1 of the inputs, padded to chunk_size seeds (same shape: no
        second compile), laid out over the mesh."""
        part = jax.tree.map(lambda x: np.asarray(x)[first:last], inputs)
        return placement.shard(placement.pad(part, chunk_size), mesh)

    store = None
    if results_dir is not None:  # checked before compiling: a refused dir costs no compile
        store = chunks.ChunkStore(results_dir, config, keys, checked)
    first_inputs = take(0, min(chunk_size, num_seeds))
    abstract = jax.eval_shape(run, *first_inputs)
    compiled, compile_seconds = compile_timed(run, *first_inputs)
    report = on_chunk or (lambda done, total, seconds: None)
    report(0, num_seeds, compile_seconds)
    parts, run_seconds, loaded, trained = [], 0.0, 0, 0
    for first in range(0, num_seeds, chunk_size):
        last = min(first + chunk_size, num_seeds)
        saved = store.load(first, last, abstract) if store else None
        if saved is not None:
            parts.append(saved)
            loaded += 1
            report(last, num_seeds, 0.0)
            continue
        chunk_inputs = first_inputs if first == 0 else take(first, last)
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*chunk_inputs))
        run_seconds += time.perf_counter() - start
        trained += last - first
        out = jax.tree.map(lambda x: x[: last - first], placement.gather(out))  # padding dropped
        if store:
            store.save(first, last, out)
        parts.append(out)
        report(last, num_seeds, time.perf_counter() - start)

    final_state, metrics, evals = parts[0] if len(parts) == 1 else jax.tree.map(
        lambda *xs: np.concatenate(xs), *parts
    )
    return result(
        config, prng.from_data(final_state, _state_shape(agent)), metrics, evals,
        num_seeds=num_seeds,
        hparams=checked,
        compile_seconds=compile_seconds,
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
