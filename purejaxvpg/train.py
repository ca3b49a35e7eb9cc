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
from purejaxvpg import memory, metrics as metrics_lib, rollout, updates
from purejaxvpg.config import Config, require_int
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


@dataclasses.dataclass(frozen=True)
class Setup:
    """The static pieces `make_train` builds from a config (no arrays that vary by seed)."""

    config: Config
    env: object
    env_params: object
    spec: envs.ActionSpec
    obs_shape: tuple[int, ...]
    actor: Actor
    critic: Critic
    actor_optimizer: optax.GradientTransformation
    critic_optimizer: optax.GradientTransformation


def _optimizer(lr: float, num_steps: int, config: Config) -> optax.GradientTransformation:
    """Adam, optionally after global-norm clipping, with an optional linear decay to 0."""
    schedule = optax.linear_schedule(lr, 0.0, num_steps) if config.anneal_lr else lr
    clip = [optax.clip_by_global_norm(config.max_grad_norm)] if config.max_grad_norm else []
    return optax.chain(*clip, optax.adam(schedule))


def setup(config: Config) -> Setup:
    """Validate the config and build environment, networks and optimizers (no compile)."""
    config.validate()
    env, env_params = envs.make(config.env_id)
    env = envs.EpisodeStatistics(env)  # below every reward change: returns are the env's own
    if config.rescale_actions:
        if envs.action_spec(env, env_params).discrete:
            raise ValueError(
                f"rescale_actions: only for continuous (Box) action spaces; {config.env_id} "
                "has a Discrete one."
            )
        env = envs.RescaleAction(env)
    spec = envs.action_spec(env, env_params)
    obs_shape = tuple(int(d) for d in env.observation_space(env_params).shape)
    env = envs.VecEnv(env, config.num_envs)
    if config.normalize_obs:
        env = envs.NormalizeObservation(env)
    if config.scale_rewards:
        env = envs.ScaleReward(env, config.gamma)
    actor = Actor(
        hidden_sizes=config.hidden_sizes,
        action_size=spec.size,
        discrete=spec.discrete,
        activation=config.activation,
        log_std_init=config.log_std_init,
        learn_log_std=config.learn_log_std,
    )
    critic = Critic(hidden_sizes=config.hidden_sizes, activation=config.activation)
    return Setup(
        config=config,
        env=env,
        env_params=env_params,
        spec=spec,
        obs_shape=obs_shape,
        actor=actor,
        critic=critic,
        actor_optimizer=_optimizer(config.policy_lr, config.num_updates, config),
        critic_optimizer=_optimizer(
            config.value_lr, config.num_updates * config.value_iters, config
        ),
    )


def make_train(config: Config):
    """Return `train(key) -> (final TrainState, metrics)` for one seed.

    metrics: dict of METRIC_NAMES -> [num_updates] arrays (scalars per update).
    Pure and jit/vmap-safe: `jax.jit(jax.vmap(train))(keys)` trains len(keys) seeds.
    Validates the config first.
    """
    return _make_train(setup(config))


def _make_train(s: Setup):
    c = s.config
    T, E = c.num_steps, c.num_envs

    def init(key: jax.Array) -> TrainState:
        key_actor, key_critic, key_env = jax.random.split(key, 3)
        dummy_obs = jnp.zeros((1, *s.obs_shape), jnp.float32)
        actor_params = s.actor.init(key_actor, dummy_obs)
        critic_params = s.critic.init(key_critic, dummy_obs)
        return TrainState(
            actor_params=actor_params,
            critic_params=critic_params,
            actor_opt_state=s.actor_optimizer.init(actor_params),
            critic_opt_state=s.critic_optimizer.init(critic_params),
            runner=rollout.reset(s.env, s.env_params, key_env),
            episodes=metrics_lib.EpisodeSummary.zeros(),
            update=jnp.zeros((), jnp.int32),
        )

    def update(state: TrainState, _):
        # 1. Rollout with the current policy: every leaf [T, E, ...].
        runner, batch = rollout.collect(
            lambda obs: s.actor.apply(state.actor_params, obs),
            s.env, s.env_params, s.spec, state.runner, T,
        )

        # 2. One critic pass over s_t and s'_t (the pre-reset next observation).
        flat = lambda x: x.reshape(T * E, *x.shape[2:])  # noqa: E731
        both = jnp.concatenate([flat(batch.obs), flat(batch.next_obs)])
        v = s.critic.apply(state.critic_params, both)
        values, next_values = v[: T * E].reshape(T, E), v[T * E :].reshape(T, E)

        # 3. GAE(gamma, lambda): bootstrap on truncation, not on termination.
        advantages, returns = adv_lib.gae(
            batch.reward, values, next_values, batch.terminated, batch.truncated,
            c.gamma, c.gae_lambda,
        )
        flat_adv = flat(advantages)
        if c.normalize_advantages:
            flat_adv = updates.normalize(flat_adv)

        # 4. One policy-gradient step, then value_iters value steps.
        obs, actions = flat(batch.obs), flat(batch.action)
        actor_params, actor_opt_state, pstats = updates.policy_step(
            s.actor.apply, state.actor_params, state.actor_opt_state, s.actor_optimizer,
            obs, actions, flat_adv, c.ent_coef,
        )
        critic_params, critic_opt_state, vstats = updates.value_steps(
            s.critic.apply, state.critic_params, state.critic_opt_state, s.critic_optimizer,
            obs, flat(returns), c.value_iters,
        )

        # 5. Metrics, reduced to scalars.
        episodes, finished = metrics_lib.summarize_episodes(
            batch.episode_return, batch.episode_length, batch.episode_finished, state.episodes
        )
        new_state = TrainState(
            actor_params, critic_params, actor_opt_state, critic_opt_state,
            runner, episodes, state.update + 1,
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

    def train(key: jax.Array):
        return jax.lax.scan(update, init(key), None, length=c.num_updates)

    return train


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

    @property
    def params(self):
        """Trained (actor, critic) parameters, leading axis num_seeds."""
        return {"actor": self.final_state.actor_params, "critic": self.final_state.critic_params}

    @property
    def env_steps_per_second(self) -> float:
        """All seeds' environment steps over the run time (compile excluded)."""
        steps = self.seeds_trained * self.config.num_updates * self.config.batch_size
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
) -> TrainResult:
    """Train `num_seeds` independent seeds in jitted, vmapped calls.

    `keys` (shape [num_seeds]) overrides `seed`; seed i always gets `seed_keys(seed, n)[i]`.
    When the seeds would not fit in device memory (estimate, see memory.py), they run in
    sequential chunks of `chunk_size` seeds (automatic unless given); a seed's result does
    not depend on the chunk it ran in. With `results_dir`, every finished chunk is written
    there at once, and a rerun of the same run loads finished chunks instead of training
    them again. Compile time and run time are measured separately.
    """
    if keys is None:
        require_int("num_seeds", num_seeds, low=1)
        keys = seed_keys(seed, num_seeds)
    num_seeds = int(keys.shape[0])
    s = setup(config)
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

    run = jax.jit(jax.vmap(_make_train(s)))
    start = time.perf_counter()
    compiled = run.lower(keys[:chunk_size]).compile()
    compile_seconds = time.perf_counter() - start

    store, abstract = None, None
    if results_dir is not None:  # the output structure restores saved chunks' PRNG keys
        store = chunks_lib.ChunkStore(results_dir, config, keys)
        abstract = jax.eval_shape(run, keys[:chunk_size])
    parts, run_seconds, loaded, trained = [], 0.0, 0, 0
    for first in range(0, num_seeds, chunk_size):
        last = min(first + chunk_size, num_seeds)
        saved = store.load(first, last, abstract) if store else None
        if saved is not None:
            parts.append(saved)
            loaded += 1
            continue
        chunk_keys = keys[first:last]
        if last - first < chunk_size:  # pad the last chunk: same shape, no second compile
            pad = jnp.broadcast_to(chunk_keys[-1:], (chunk_size - (last - first),))
            chunk_keys = jnp.concatenate([chunk_keys, pad])
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(chunk_keys))
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
    return TrainResult(
        config=config,
        num_seeds=num_seeds,
        metrics={k: np.asarray(v) for k, v in metrics.items()},
        final_state=final_state,
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
        chunk_size=chunk_size,
        chunks_loaded=loaded,
        seeds_trained=trained,
    )

