"""make_train(config) -> train(key): the whole run as one pure function of a PRNG key.

Data flows one way per update:
  envs -> rollout.collect -> critic pass -> advantages.gae -> updates -> metrics.
`jax.jit(jax.vmap(train))(keys)` runs many seeds in one call; `purejaxvpg.train` does
that for you, after validating the config and checking that the run fits in memory.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

import envs
from purejaxvpg import advantages as adv_lib
from purejaxvpg import chunks as chunks_lib
from purejaxvpg import envstack, memory, metrics as metrics_lib, rollout, updates
from purejaxvpg import keys as keys_lib
from purejaxvpg.keys import seed_keys
from purejaxvpg.config import SWEEPABLE, Config, check_hyperparameter, require_int
from purejaxvpg.evaluate import EVAL_METRIC_NAMES, make_evaluate
from purejaxvpg.networks import Actor, Critic

METRIC_NAMES = (
    "episode_return",
    "episode_return_min",
    "episode_return_max",
    "episode_length",
    "episode_length_min",
    "episode_length_max",
    "episodes_finished",
    "env_steps",
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "explained_variance",
    "policy_grad_norm",
    "value_grad_norm",
)


@struct.dataclass
class TrainState:
    """Everything a run carries from one update to the next (one seed)."""

    actor_params: object
    critic_params: object
    actor_opt_state: object
    critic_opt_state: object
    runner: rollout.EnvRunnerState
    episodes: metrics_lib.EpisodeSummary  # last summary, carried when no episode ends
    update: jax.Array  # number of updates done
    eval_key: jax.Array  # evaluation's own key: evaluating never changes training's stream


@struct.dataclass
class HyperParams:
    """The plain-number hyperparameters (config.SWEEPABLE) a sweep may batch.

    Leaves are Python numbers (compiled in as constants: a normal run) or arrays with a
    leading [runs] axis vmapped like seeds (a sweep; see `train(..., hparams=...)`).
    """

    policy_lr: object
    value_lr: object
    gamma: object
    gae_lambda: object
    ent_coef: object
    value_iters: object

    @classmethod
    def from_config(cls, config: Config) -> "HyperParams":
        return cls(**{name: getattr(config, name) for name in SWEEPABLE})


@dataclasses.dataclass(frozen=True)
class Setup:
    """The static pieces `make_train` builds from a config (no arrays that vary by seed)."""

    config: Config
    stack: envstack.EnvStack
    actor: Actor
    critic: Critic

    @property
    def env(self):
        return self.stack.env

    @property
    def env_params(self):
        return self.stack.env_params

    @property
    def spec(self) -> envs.ActionSpec:
        return self.stack.spec

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.stack.obs_shape


def _optimizer(lr, num_steps, config: Config) -> optax.GradientTransformation:
    """Adam, optionally after global-norm clipping, with an optional linear decay to 0.

    `lr` and `num_steps` may be traced (a sweep), so the decay is written out:
    lr_k = lr * max(0, 1 - k / num_steps) after k optimizer steps.
    """
    if config.anneal_lr:
        schedule = lambda k: lr * jnp.clip(1.0 - k / num_steps, 0.0, 1.0)  # noqa: E731
    else:
        schedule = lr
    clip = [optax.clip_by_global_norm(config.max_grad_norm)] if config.max_grad_norm else []
    return optax.chain(*clip, optax.adam(schedule))


def setup(config: Config) -> Setup:
    """Validate the config and build environment and networks (no compile)."""
    config.validate()
    stack = envstack.build(config, config.num_envs)
    actor = Actor(
        hidden_sizes=config.hidden_sizes,
        action_size=stack.spec.size,
        discrete=stack.spec.discrete,
        activation=config.activation,
        log_std_init=config.log_std_init,
        learn_log_std=config.learn_log_std,
    )
    critic = Critic(hidden_sizes=config.hidden_sizes, activation=config.activation)
    return Setup(config=config, stack=stack, actor=actor, critic=critic)


def make_train(config: Config):
    """Return `train(key) -> (final TrainState, metrics)` for one seed.

    metrics: dict of METRIC_NAMES (and, with eval_every, EVAL_METRIC_NAMES) -> [num_updates]
    arrays, scalars per update; evaluation entries are 0 except after updates eval_every,
    2 * eval_every, ... (see `split_metrics`).
    Pure and jit/vmap-safe: `jax.jit(jax.vmap(train))(keys)` trains len(keys) seeds.
    Validates the config first.
    """
    return _make_train(setup(config))


def _make_train(s: Setup):
    """`train(key)` with the config's own hyperparameters compiled in."""
    program = Program(s)
    hp = HyperParams.from_config(s.config)
    return lambda key: program.train(key, hp)


class Program:
    """The pure functions of one seed's run, for a fixed Setup.

    init(key, hp) -> TrainState
    run(state, hp, first_update, length) -> (TrainState, metrics [length])  `length` static
    train(key, hp) = run(init(key, hp), hp, 0, num_updates)
    Running the updates in several `run` calls gives the same result as one call: the
    whole run's randomness is in the state, and `first_update` is the global update index.
    """

    def __init__(self, s: Setup):
        self.s = s
        self.config = s.config
        self.evaluate = make_evaluate(s.config, s.actor) if s.config.eval_every else None

    def optimizers(self, hp: HyperParams):
        c = self.config
        return (
            _optimizer(hp.policy_lr, c.num_updates, c),
            _optimizer(hp.value_lr, c.num_updates * hp.value_iters, c),
        )

    def init(self, key: jax.Array, hp: HyperParams) -> TrainState:
        s = self.s
        actor_optimizer, critic_optimizer = self.optimizers(hp)
        streams = keys_lib.RunStreams.of(key)  # one stream per consumer (see keys.py)
        dummy_obs = jnp.zeros((1, *s.obs_shape), jnp.float32)
        actor_params = s.actor.init(streams.actor, dummy_obs)
        critic_params = s.critic.init(streams.critic, dummy_obs)
        runner = rollout.reset(s.env, s.env_params, streams.env)
        # reward scaling discounts with this run's gamma (a sweep's own), not the config's
        runner = runner.replace(env_state=envs.set_return_discount(runner.env_state, hp.gamma))
        return TrainState(
            actor_params=actor_params,
            critic_params=critic_params,
            actor_opt_state=actor_optimizer.init(actor_params),
            critic_opt_state=critic_optimizer.init(critic_params),
            runner=runner,
            episodes=metrics_lib.EpisodeSummary.zeros(),
            update=jnp.zeros((), jnp.int32),
            eval_key=streams.evaluation,
        )

    def update(self, state: TrainState, hp: HyperParams):
        s, c = self.s, self.config
        T, E = c.num_steps, c.num_envs
        actor_optimizer, critic_optimizer = self.optimizers(hp)

        # 1. Rollout with the current policy: every leaf [T, E, ...].
        runner, batch = rollout.collect(
            lambda obs: s.actor.apply(state.actor_params, obs),
            s.env, s.env_params, s.spec, state.runner, T, unroll=c.scan_unroll,
        )

        # 2. One critic pass over s_t and s'_t (the pre-reset next observation).
        flat = lambda x: x.reshape(T * E, *x.shape[2:])  # noqa: E731
        both = jnp.concatenate([flat(batch.obs), flat(batch.next_obs)])
        v = s.critic.apply(state.critic_params, both)
        values, next_values = v[: T * E].reshape(T, E), v[T * E :].reshape(T, E)

        # 3. GAE(gamma, lambda): bootstrap on truncation, not on termination.
        advantages, returns = adv_lib.gae(
            batch.reward, values, next_values, batch.terminated, batch.truncated,
            hp.gamma, hp.gae_lambda, method=c.gae_method, unroll=c.scan_unroll,
        )
        flat_adv = flat(advantages)
        if c.normalize_advantages:
            flat_adv = updates.normalize(flat_adv)

        # 4. One policy-gradient step, then value_iters value steps.
        obs, actions = flat(batch.obs), flat(batch.action)
        actor_params, actor_opt_state, pstats = updates.policy_step(
            s.actor.apply, state.actor_params, state.actor_opt_state, actor_optimizer,
            obs, actions, flat_adv, hp.ent_coef,
        )
        critic_params, critic_opt_state, vstats = updates.value_steps(
            s.critic.apply, state.critic_params, state.critic_opt_state, critic_optimizer,
            obs, flat(returns), hp.value_iters, unroll=c.scan_unroll,
        )

        # 5. Metrics, reduced to scalars.
        episodes, finished = metrics_lib.summarize_episodes(
            batch.episode_return, batch.episode_length, batch.episode_finished, state.episodes
        )
        new_state = TrainState(
            actor_params, critic_params, actor_opt_state, critic_opt_state,
            runner, episodes, state.update + 1, state.eval_key,
        )
        metrics = {
            "episode_return": episodes.return_mean,
            "episode_return_min": episodes.return_min,
            "episode_return_max": episodes.return_max,
            "episode_length": episodes.length_mean,
            "episode_length_min": episodes.length_min,
            "episode_length_max": episodes.length_max,
            "episodes_finished": finished,
            "env_steps": new_state.update * (T * E),
            "policy_loss": pstats.loss,
            "value_loss": vstats.loss,
            "entropy": pstats.entropy,
            "approx_kl": pstats.approx_kl,
            "explained_variance": metrics_lib.explained_variance(values, returns),
            "policy_grad_norm": pstats.grad_norm,
            "value_grad_norm": vstats.grad_norm,
        }
        return new_state, metrics

    def run(self, state: TrainState, hp: HyperParams, first_update, length: int):
        """`length` updates starting at global update index `first_update` (keep it
        unbatched under vmap: it decides when to evaluate). Updates past num_updates
        (a last, partial block) leave the state unchanged and report zeros."""
        c = self.config

        def step(state, u):
            state, metrics = self.update(state, hp)
            if self.evaluate is not None:
                due = (u + 1) % c.eval_every == 0
                key = keys_lib.in_run_eval_key(state.eval_key, u)
                skipped = {n: jnp.zeros((), jnp.float32) for n in EVAL_METRIC_NAMES}
                metrics |= jax.lax.cond(
                    due,
                    lambda: self.evaluate(state.actor_params, state.runner.env_state, key),
                    lambda: skipped,
                )
            return state, metrics

        def guarded(state, u):
            zeros = jax.tree.map(
                lambda x: jnp.zeros(x.shape, x.dtype), jax.eval_shape(step, state, u)[1]
            )
            return jax.lax.cond(u < c.num_updates, step, lambda st, _: (st, zeros), state, u)

        body = step if isinstance(first_update, int) and first_update + length <= c.num_updates else guarded
        return jax.lax.scan(body, state, first_update + jnp.arange(length))

    def train(self, key: jax.Array, hp: HyperParams):
        return self.run(self.init(key, hp), hp, 0, self.config.num_updates)


def split_metrics(config: Config, metrics: dict) -> tuple[dict, dict]:
    """Per-update metrics [..., num_updates] -> (training metrics [..., num_updates],
    evaluation metrics [..., num_evals]) keeping only the updates that evaluated."""
    train_metrics = {k: v for k, v in metrics.items() if k not in EVAL_METRIC_NAMES}
    updates = next(iter(metrics.values())).shape[-1]  # fewer than num_updates if stopped early
    at = np.arange(1, config.num_evals + 1) * config.eval_every - 1
    at = at[at < updates]
    eval_metrics = {k: v[..., at] for k, v in metrics.items() if k in EVAL_METRIC_NAMES}
    return train_metrics, eval_metrics


def first_nonfinite_update(config: Config, metrics: dict, eval_metrics: dict, params=None) -> np.ndarray:
    """Per seed, the first update at which a metric (losses, returns, gradient norms,
    evaluations) is NaN or infinite, or the last update if only the final `params` are
    not finite; -1 for a seed that stayed finite. [num_seeds] int.

    metrics: name -> [num_seeds, updates]; eval_metrics: name -> [num_seeds, num_evals],
    evaluation k taken after update (k + 1) * eval_every - 1 (see split_metrics).
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
    metrics: dict[str, np.ndarray]  # name -> [num_seeds, num_updates]
    final_state: TrainState
    compile_seconds: float
    run_seconds: float  # summed over the chunks trained in this call
    chunk_size: int = 0  # seeds per jitted call
    chunks_loaded: int = 0  # chunks read back from results_dir instead of trained
    seeds_trained: int = 0  # seeds trained in this call (the rest were loaded)
    # with config.eval_every: EVAL_METRIC_NAMES -> [num_seeds, num_evals]
    eval_metrics: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    hparams: HyperParams | None = None  # a sweep's per-run hyperparameters, [num_seeds] each
    updates_trained: int | None = None  # updates run in this call (None: all of them)

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


def train(
    config: Config,
    num_seeds: int = 1,
    seed: int = 0,
    keys: jax.Array | None = None,
    chunk_size: int | None = None,
    results_dir: str | Path | None = None,
    hparams: HyperParams | None = None,
) -> TrainResult:
    """Train `num_seeds` independent seeds in jitted, vmapped calls.

    `keys` (shape [num_seeds]) overrides `seed`; seed i always gets `seed_keys(seed, n)[i]`.
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
    """
    keys = seed_keys(seed, num_seeds) if keys is None else keys_lib.check_keys(keys)
    num_seeds = int(keys.shape[0])
    s = setup(config)
    program = Program(s)
    if hparams is None:
        const = HyperParams.from_config(config)
        run = jax.jit(jax.vmap(lambda key: program.train(key, const)))
        inputs = keys
    else:
        hparams = _checked_hparams(hparams, num_seeds)
        run = jax.jit(jax.vmap(program.train))
        inputs = (keys, hparams)
    fit = memory.seeds_that_fit(config, s.obs_shape, s.spec.size)
    if chunk_size is None:
        chunk_size = min(num_seeds, fit)
    else:
        require_int("chunk_size", chunk_size, low=1)
        if chunk_size > fit:
            raise ValueError(
                f"chunk_size: at most {fit} seeds fit in device memory (estimate), got {chunk_size}."
            )
        chunk_size = min(chunk_size, num_seeds)

    take = lambda first, last: jax.tree.map(lambda x: x[first:last], inputs)  # noqa: E731
    store, abstract = None, None
    if results_dir is not None:  # checked before compiling: a refused dir costs no compile
        store = chunks_lib.ChunkStore(results_dir, config, keys, hparams)
        abstract = jax.eval_shape(run, *_args(take(0, chunk_size)))  # restores saved PRNG keys
    start = time.perf_counter()
    compiled = run.lower(*_args(take(0, chunk_size))).compile()
    compile_seconds = time.perf_counter() - start
    parts, run_seconds, loaded, trained = [], 0.0, 0, 0
    for first in range(0, num_seeds, chunk_size):
        last = min(first + chunk_size, num_seeds)
        saved = store.load(first, last, abstract) if store else None
        if saved is not None:
            parts.append(saved)
            loaded += 1
            continue
        chunk = take(first, last)
        if last - first < chunk_size:  # pad the last chunk: same shape, no second compile
            pad = lambda x: jnp.concatenate(  # noqa: E731
                [x, jnp.broadcast_to(x[-1:], (chunk_size - (last - first), *x.shape[1:]))]
            )
            chunk = jax.tree.map(pad, chunk)
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*_args(chunk)))
        run_seconds += time.perf_counter() - start
        trained += last - first
        if num_seeds > chunk_size:  # several chunks: keep finished ones on the host
            out = jax.tree.map(lambda x: chunks_lib.to_host(x, last - first), out)
        if store:
            store.save(first, last, out)
        parts.append(out)

    final_state, metrics = parts[0] if len(parts) == 1 else jax.tree.map(
        chunks_lib.concatenate, *parts
    )
    train_metrics, eval_metrics = split_metrics(config, metrics)
    return TrainResult(
        config=config,
        num_seeds=num_seeds,
        metrics={k: np.asarray(v) for k, v in train_metrics.items()},
        eval_metrics={k: np.asarray(v) for k, v in eval_metrics.items()},
        hparams=hparams,
        final_state=final_state,
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
        chunk_size=chunk_size,
        chunks_loaded=loaded,
        seeds_trained=trained,
    )


def _checked_hparams(hparams, num_seeds: int) -> HyperParams:
    """A sweep's HyperParams with leaves as arrays [num_seeds], every element in its
    Config field's range (config.check_hyperparameter); ValueError naming
    `hparams.<field>` otherwise. Runs before anything compiles."""
    if not isinstance(hparams, HyperParams):
        raise ValueError(f"hparams: must be a purejaxvpg.HyperParams, got {type(hparams).__name__}.")
    leaves = {}
    for name in SWEEPABLE:
        label = f"hparams.{name}"
        leaf = np.asarray(getattr(hparams, name))
        if leaf.shape != (num_seeds,):
            raise ValueError(f"{label}: must have shape ({num_seeds},), got {leaf.shape}.")
        if leaf.dtype.kind not in "biuf":
            raise ValueError(f"{label}: must hold numbers, got dtype {leaf.dtype}.")
        for value in np.unique(leaf):  # a sweep holds few distinct values
            check_hyperparameter(name, value.item(), label)
        leaves[name] = jnp.asarray(leaf)
    return HyperParams(**leaves)


def _args(inputs) -> tuple:
    """Positional arguments of the vmapped train: (keys,) or (keys, hparams)."""
    return inputs if isinstance(inputs, tuple) else (inputs,)
