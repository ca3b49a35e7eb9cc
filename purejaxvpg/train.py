"""make_train(config) -> train(key): the whole run as one pure function of a PRNG key.

Data flows one way per update:
  envs -> rollout.collect -> critic pass -> advantages.gae -> updates -> metrics.
`jax.jit(jax.vmap(train))(keys)` runs many seeds in one call; `purejaxvpg.train` does
that for you, after validating the config and checking that the run fits in memory.
"""

from __future__ import annotations

import dataclasses
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
from purejaxvpg.config import SWEEPABLE, Config, require_int
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
        key_actor, key_critic, key_env = jax.random.split(key, 3)
        dummy_obs = jnp.zeros((1, *s.obs_shape), jnp.float32)
        actor_params = s.actor.init(key_actor, dummy_obs)
        critic_params = s.critic.init(key_critic, dummy_obs)
        return TrainState(
            actor_params=actor_params,
            critic_params=critic_params,
            actor_opt_state=actor_optimizer.init(actor_params),
            critic_opt_state=critic_optimizer.init(critic_params),
            runner=rollout.reset(s.env, s.env_params, key_env),
            episodes=metrics_lib.EpisodeSummary.zeros(),
            update=jnp.zeros((), jnp.int32),
            eval_key=jax.random.fold_in(key, 1),
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
                key = jax.random.fold_in(state.eval_key, u)
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


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """The keys `train` uses: key i belongs to seed i whatever num_seeds is."""
    return jax.random.split(jax.random.key(seed), num_seeds)


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
    them again. Compile time and run time are measured separately.

    `hparams` (a sweep) gives each run its own numeric hyperparameters: a HyperParams
    whose leaves are arrays of shape [num_seeds], aligned with the keys; the config's
    values of those fields are then ignored.
    """
    if keys is None:
        require_int("num_seeds", num_seeds, low=1)
        keys = seed_keys(seed, num_seeds)
    num_seeds = int(keys.shape[0])
    s = setup(config)
    program = Program(s)
    if hparams is None:
        const = HyperParams.from_config(config)
        run = jax.jit(jax.vmap(lambda key: program.train(key, const)))
        inputs = keys
    else:
        hparams = jax.tree.map(jnp.asarray, hparams)
        for name, leaf in zip(SWEEPABLE, jax.tree.leaves(hparams)):
            if leaf.shape != (num_seeds,):
                raise ValueError(f"hparams.{name}: must have shape ({num_seeds},), got {leaf.shape}.")
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
    start = time.perf_counter()
    compiled = run.lower(*_args(take(0, chunk_size))).compile()
    compile_seconds = time.perf_counter() - start

    store, abstract = None, None
    if results_dir is not None:  # the output structure restores saved chunks' PRNG keys
        store = chunks_lib.ChunkStore(results_dir, config, keys, hparams)
        abstract = jax.eval_shape(run, *_args(take(0, chunk_size)))
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


def _args(inputs) -> tuple:
    """Positional arguments of the vmapped train: (keys,) or (keys, hparams)."""
    return inputs if isinstance(inputs, tuple) else (inputs,)
