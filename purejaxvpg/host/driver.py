"""The host driver: build the program once (`prepare`), compile it in blocks of updates
(`compile_blocks`) and describe its outcome (`TrainResult`, built in one place: `result`).

Every run goes through `compile_blocks`: the CLI session (session.py) and
`purejaxvpg.train`, whose chunks of seeds are sessions without a run directory
(chunks.py). The throughput benchmark times the whole run as one plain call
(`sharded_run`, `whole_run`, `compile_timed`).
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from purejaxvpg.algo import prng, program
from purejaxvpg.algo.metrics import EvalMetrics, UpdateMetrics
from purejaxvpg.algo.policy import seed_policy
from purejaxvpg.algo.program import Agent, HyperParams, TrainState
from purejaxvpg.checks import require_int
from purejaxvpg.config import Config
from purejaxvpg.host import compile_cache, placement
from purejaxvpg.host.cpu_lowering import unrolled_threefry


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


def sharded_run(agent: Agent, mesh):
    """`whole_run` split over the mesh's seed axis (placement.over_seeds): f(key_data) ->
    to_data((state, UpdateMetrics, EvalMetrics)), every input and output leaf
    [num_seeds, ...] with num_seeds a multiple of the mesh size (what `bench` times)."""
    const = HyperParams.from_config(agent.config)

    def body(key_data):
        keys = jax.random.wrap_key_data(key_data)
        return prng.to_data(jax.vmap(lambda key: program.train(agent, const, key))(keys))

    return jax.jit(placement.over_seeds(body, mesh))


def _state_shape(agent: Agent, num_seeds: int = 1):
    """Shapes and dtypes of the batched TrainState of `num_seeds` seeds (which leaves are
    PRNG keys), by tracing init only (no compile)."""
    hp = HyperParams.from_config(agent.config)
    return jax.eval_shape(jax.vmap(lambda key: program.init(agent, hp, key)), prng.seed_keys(0, num_seeds))


def compile_timed(jitted, *args):
    """(compiled executable, seconds spent lowering and compiling), lowered as every run is
    (cpu_lowering.py)."""
    start = time.perf_counter()
    with unrolled_threefry():
        lowered = jitted.lower(*args)
    compiled = lowered.compile()
    return compiled, time.perf_counter() - start


def timed_blocks(agent: Agent, num_seeds: int, block: int, mesh=None, sweep: tuple | None = None):
    """`compile_blocks` with the persistent compile cache on (compile_cache.py): (init, step,
    seconds it took, whether both came from that cache). ~0 s when this process compiled
    the same blocks before."""
    compile_cache.enable()
    (hits, misses), start = compile_cache.counts(), time.perf_counter()
    init, step = compile_blocks(agent, num_seeds, block, mesh, sweep)
    seconds, (hits_now, misses_now) = time.perf_counter() - start, compile_cache.counts()
    return init, step, seconds, hits_now > hits and misses_now == misses


@functools.lru_cache(maxsize=8)
def compile_blocks(agent: Agent, num_seeds: int, block: int, mesh=None, sweep: tuple | None = None):
    """(init, step) for num_seeds seeds (a multiple of the mesh size) in
    blocks of `block` updates, split over the mesh's seed axis (placement.mesh(): every
    device). init(key_data[, hparams]) -> state; step(state, first_update[, hparams]) ->
    (state, UpdateMetrics [block], EvalMetrics [block // eval_every]); the state is in
    key-data form (prng.to_data; `abstract_state` is its typed structure).
    sweep: None, the config's hyperparameters compiled in; or each seed's are an input, a
    HyperParams of [num_seeds] leaves whose (name, dtype) pairs `sweep` lists
    (`sweep_signature`). Cached, so a resumed run, the next chunk of seeds or a rerun in
    one process (one Agent: `prepare` caches it) does not compile again."""
    const = HyperParams.from_config(agent.config)
    mesh = placement.mesh() if mesh is None else mesh
    typed = _state_shape(agent, num_seeds)

    def init(key_data, *hparams):
        keys = jax.random.wrap_key_data(key_data)
        if sweep is not None:
            return prng.to_data(jax.vmap(lambda key, hp: program.init(agent, hp, key))(keys, *hparams))
        return prng.to_data(jax.vmap(lambda key: program.init(agent, const, key))(keys))

    def step(state, first, *hparams):
        state = prng.from_data(state, typed)
        if sweep is not None:
            out = jax.vmap(lambda s, hp: program.run(agent, hp, s, first, block))(state, *hparams)
        else:
            out = jax.vmap(lambda s: program.run(agent, const, s, first, block))(state)
        state, metrics, evals = out
        return prng.to_data(state), metrics, evals

    key_data = placement.abstract(placement.host_keys(prng.seed_keys(0, num_seeds)), mesh)  # shapes only
    hp = ()
    if sweep is not None:  # shapes only
        like = HyperParams(**{name: np.zeros((num_seeds,), dtype) for name, dtype in sweep})
        hp = (placement.abstract(like, mesh),)
    split = (placement.SPLIT,) * len(hp)
    init = jax.jit(placement.over_seeds(init, mesh, in_specs=(placement.SPLIT, *split)))
    step = jax.jit(
        placement.over_seeds(step, mesh, in_specs=(placement.SPLIT, placement.REPLICATED, *split)),
        donate_argnums=0 if jax.default_backend() != "cpu" else (),  # CPU cannot donate
    )
    state = placement.abstract(jax.eval_shape(init, key_data, *hp), mesh)
    with unrolled_threefry():  # the CPU's random draws as fused kernels, not loops (same bits)
        lowered = init.lower(key_data, *hp), step.lower(state, jnp.int32(0), *hp)
    return tuple(part.compile() for part in lowered)


def sweep_signature(hparams) -> tuple | None:
    """The hashable (name, dtype) pairs of a sweep's HyperParams leaves (compile_blocks'
    `sweep`); None for no sweep."""
    if hparams is None:
        return None
    return tuple((name, str(np.asarray(value).dtype)) for name, value in vars(hparams).items() if value is not None)


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
    compile_from_cache: bool = False  # the compile was loaded from the persistent cache
    chunk_size: int = 0  # seeds per jitted call
    chunks_loaded: int = 0  # chunks read back from results_dir instead of trained
    seeds_trained: int = 0  # seeds trained in this call (the rest were loaded)
    # with config.eval_every: metrics.EvalMetrics names -> [num_seeds, num_evals]
    eval_metrics: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    hparams: HyperParams | None = None  # a sweep's per-run hyperparameters, [num_seeds] each
    updates_trained: int | None = None  # updates run in this call (None: all of them)
    # seeds x updates run in this call when seeds ran different numbers of updates (a
    # chunked CLI run resumed mid-chunk, seed_ranges.py); None: seeds_trained * updates
    seed_updates_trained: int | None = None
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
    def final_eval(self) -> dict[str, np.ndarray]:
        """The final evaluation (config.final_eval: after the last update, eval_episodes
        episodes per seed): metrics.EvalMetrics names -> [num_seeds]; {} when the run has
        none (final_eval off, or stopped before its last update)."""
        final = self.final_state.final_eval
        if final is None or self.metrics["env_steps"].shape[1] < self.config.num_updates:
            return {}
        return {name: np.asarray(value) for name, value in final.as_dict().items()}

    @property
    def params(self):
        """Trained (actor, critic) parameters, leading axis num_seeds."""
        return {"actor": self.final_state.actor_params, "critic": self.final_state.critic_params}

    @property
    def env_steps_per_second(self) -> float:
        """All seeds' environment steps over the run time (compile excluded)."""
        updates = self.config.num_updates if self.updates_trained is None else self.updates_trained
        seed_updates = self.seeds_trained * updates if self.seed_updates_trained is None else self.seed_updates_trained
        steps = seed_updates * self.config.batch_size
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
