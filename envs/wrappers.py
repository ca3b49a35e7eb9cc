"""Wrappers that keep the gymnax >= 1.0 step contract.

Per-environment wrappers (EpisodeStatistics, FlattenObservation, RescaleAction) wrap one
environment; VecEnv steps `num_envs` copies at once; the batch wrappers above it
(NormalizeObservation, ScaleReward) keep running statistics shared by those environments
in their state, so under `vmap` over seeds every seed has its own, and they travel with
whatever saves the state (checkpoints).

Typical stack: env -> EpisodeStatistics -> [RescaleAction] -> VecEnv(E)
-> [NormalizeObservation] -> [ScaleReward]. EpisodeStatistics sits below the reward
scaling, so reported returns are always the environment's own.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from purejaxvpg.envs import spaces


class Wrapper:
    """Pass everything through to the wrapped environment unless overridden."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        if name == "env":  # not set yet (e.g. during copy): do not recurse
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self, key, params):
        return self.env.reset(key, params)

    def step(self, key, state, action, params):
        return self.env.step(key, state, action, params)


# ---------------------------------------------------------------- per environment


@struct.dataclass
class EpisodeStatisticsState:
    env_state: object
    episode_return: jax.Array  # return of the episode in progress
    episode_length: jax.Array  # steps of the episode in progress


class EpisodeStatistics(Wrapper):
    """Track the undiscounted return and length of each episode.

    An episode ends on termination *or* truncation. On the step that ends it, ``info``
    carries ``episode_return`` / ``episode_length`` of that whole episode and
    ``episode_finished = True``; the running counters then restart at zero, so two
    episodes are never mixed.
    """

    def reset(self, key, params):
        obs, env_state = self.env.reset(key, params)
        zero = jnp.zeros((), jnp.float32)
        return obs, EpisodeStatisticsState(env_state, zero, jnp.zeros((), jnp.int32))

    def step(self, key, state: EpisodeStatisticsState, action, params):
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        episode_return = state.episode_return + reward.astype(jnp.float32)
        episode_length = state.episode_length + 1
        info = {
            **info,
            "episode_return": episode_return,
            "episode_length": episode_length,
            "episode_finished": done,
        }
        new_state = EpisodeStatisticsState(
            env_state,
            jnp.where(done, 0.0, episode_return),
            jnp.where(done, 0, episode_length),
        )
        return obs, new_state, reward, terminated, truncated, info


class FlattenObservation(Wrapper):
    """Observations (and final observations) of any shape -> float32 vectors."""

    def observation_space(self, params):
        size = int(np.prod(self.env.observation_space(params).shape))
        return spaces.Box(-jnp.inf, jnp.inf, (size,), jnp.float32)

    def reset(self, key, params):
        obs, state = self.env.reset(key, params)
        return self._flat(obs), state

    def step(self, key, state, action, params):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        info = {**info, "final_observation": self._flat(info["final_observation"])}
        return self._flat(obs), state, reward, terminated, truncated, info

    @staticmethod
    def _flat(obs):
        return jnp.reshape(obs, (-1,)).astype(jnp.float32)


class RescaleAction(Wrapper):
    """The agent acts in [-1, 1]^n; the environment receives low + (a + 1) / 2 * (high - low).

    Actions outside [-1, 1] are clipped first, so the environment never sees an action
    outside its box.
    """

    def action_space(self, params=None):
        inner = self.env.action_space(params)
        if not spaces.is_box(inner):
            raise ValueError(f"RescaleAction: {self.env.name} has a {type(inner).__name__} action space, not a Box.")
        return spaces.Box(-1.0, 1.0, inner.shape, jnp.float32)

    def step(self, key, state, action, params):
        box = self.env.action_space(params)
        return self.env.step(key, state, rescale_to_box(action, box.low, box.high), params)


def rescale_to_box(action, low, high):
    """[-1, 1]^n -> the box [low, high]: low + (clip(a, -1, 1) + 1) / 2 * (high - low).
    RescaleAction's mapping, also what a trained policy sends outside training."""
    low, high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)
    return low + (jnp.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (high - low)


# ---------------------------------------------------------------- vectorised


class VecEnv(Wrapper):
    """`num_envs` independent copies: obs [E, ...], reward/terminated/truncated [E].

    Spaces stay those of one environment.
    """

    def __init__(self, env, num_envs: int):
        super().__init__(env)
        self.num_envs = num_envs

    def reset(self, key, params):
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.reset, in_axes=(0, None))(keys, params)

    def step(self, key, state, action, params):
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)


@struct.dataclass
class RunningMeanStd:
    """Mean and (population) variance of a prior plus everything seen so far.

    The prior is `count` pseudo-observations with mean 0 and variance 1, merged exactly like
    data (Chan et al.'s parallel update). Without one, the statistics of a first batch of
    equal values (one environment; CartPole's alive bonus in every environment) have
    variance 0, and dividing by its square root multiplies by 1 / sqrt(eps) = 1e4.
    """

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def prior(cls, shape, count: float = 1e-4) -> RunningMeanStd:
        """`count` pseudo-observations of mean 0 and variance 1 (gym's RunningMeanStd: 1e-4)."""
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.float32(count))

    def update(self, batch: jax.Array) -> RunningMeanStd:
        """batch: [N, *shape]."""
        n = jnp.float32(batch.shape[0])
        # Batch mean and variance in one fused pass over d = x - x_0, shifted by the batch's
        # first row: var_b = mean(d^2) - mean(d)^2. Unshifted, E[x^2] - E[x]^2 cancels in
        # float32 (offset 100, std 0.01 gives 0); d is of the size of the spread, so it does not.
        shift = batch[0]
        d = batch - shift
        mean_d = d.mean(axis=0)
        batch_mean = shift + mean_d
        batch_var = jnp.maximum(jnp.mean(jnp.square(d), axis=0) - jnp.square(mean_d), 0.0)
        total = self.count + n
        delta = batch_mean - self.mean
        mean = self.mean + delta * n / total
        # M2 = M2_a + M2_b + delta^2 * n_a * n_b / (n_a + n_b)
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        return RunningMeanStd(mean, m2 / total, total)


@struct.dataclass
class NormalizeObservationState:
    env_state: object
    stats: RunningMeanStd


class NormalizeObservation(Wrapper):
    """obs -> clip((obs - mean) / sqrt(var + eps), -clip, clip), statistics over the batch of
    environments and all steps so far. `frozen=True` stops updating (for evaluation);
    `reset(key, params, stats)` starts from given statistics (trained ones, a checkpoint).
    info["final_observation"] is normalised with the same statistics.

    The statistics start from a weak prior (`prior_count` = 1e-4 pseudo-observations of
    mean 0, variance 1, as gym's): after n observations it weighs 1e-4 / n, so the first
    batch already centres off-centre features.

    `per_channel`: one mean and variance per channel (the last axis) of an image, over every
    pixel of every environment, instead of one per element: what a convolution expects (its
    kernel is shared across positions, so positions must share a scale).
    """

    def __init__(self, env, frozen: bool = False, clip: float = 10.0, eps: float = 1e-8,
                 prior_count: float = 1e-4, per_channel: bool = False):
        super().__init__(env)
        self.frozen, self.clip, self.eps, self.prior_count = frozen, clip, eps, prior_count
        self.per_channel = per_channel

    def _update(self, stats: RunningMeanStd, obs: jax.Array) -> RunningMeanStd:
        """obs [N, *shape]: per element, or per channel over N x pixels ([N * H * W, C])."""
        obs = obs.astype(jnp.float32)  # a no-op for float32; MinAtar's images are bool
        return stats.update(obs.reshape(-1, obs.shape[-1]) if self.per_channel else obs)

    def normalize(self, stats: RunningMeanStd, obs: jax.Array) -> jax.Array:
        z = (obs.astype(jnp.float32) - stats.mean) / jnp.sqrt(stats.var + self.eps)
        return jnp.clip(z, -self.clip, self.clip)

    def reset(self, key, params, stats: RunningMeanStd | None = None):
        obs, env_state = self.env.reset(key, params)
        if stats is None:
            stats = RunningMeanStd.prior(obs.shape[-1:] if self.per_channel else obs.shape[1:], self.prior_count)
        if not self.frozen:
            stats = self._update(stats, obs)
        return self.normalize(stats, obs), NormalizeObservationState(env_state, stats)

    def step(self, key, state: NormalizeObservationState, action, params):
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        stats = state.stats if self.frozen else self._update(state.stats, obs)
        info = {**info, "final_observation": self.normalize(stats, info["final_observation"])}
        new_state = NormalizeObservationState(env_state, stats)
        return self.normalize(stats, obs), new_state, reward, terminated, truncated, info


def observation_stats(state) -> RunningMeanStd | None:
    """The NormalizeObservation statistics inside a (possibly wrapped) environment state,
    or None when the stack does not normalise observations. Used to evaluate a trained
    policy with the statistics it was trained with."""
    while state is not None:
        if isinstance(state, NormalizeObservationState):
            return state.stats
        state = getattr(state, "env_state", None)
    return None


@struct.dataclass
class ScaleRewardState:
    env_state: object
    discounted_return: jax.Array  # [E], G_t = gamma * G_{t-1} + r_t, reset at episode ends
    stats: RunningMeanStd  # of G over all environments and steps
    gamma: jax.Array  # the discount of G: a leaf, so a sweep over gamma batches it too


class ScaleReward(Wrapper):
    """r -> r / sqrt(Var[G] + eps), with G the running discounted return of each environment.

    Keeps value targets of order one whatever the reward scale (as in Engstrom et al., 2020,
    "Implementation Matters in Deep Policy Gradients"). The mean is not subtracted, so the
    sign of rewards, and which policy is optimal, are unchanged. G restarts at 0 after
    every episode end (terminated or truncated).

    Var[G] starts from a prior of `prior_count` = 1 pseudo-return of variance 1 (mean 0):
    the first scale is of order one (CartPole's first reward becomes 1 / sqrt(0.75) = 1.15,
    not 1e4), and while few returns are seen the scale is pulled toward 1, i.e. toward
    leaving rewards unchanged; after n returns the prior weighs 1 / (n + 1). gym's weaker
    prior (1e-4) still multiplies CartPole's first reward by 70 in one environment.

    `gamma` is the default discount; `set_return_discount` replaces it in a state (the
    trainer sets the run's own, which a sweep batches).
    """

    def __init__(self, env, gamma: float, eps: float = 1e-8, prior_count: float = 1.0):
        super().__init__(env)
        self.gamma, self.eps, self.prior_count = gamma, eps, prior_count

    def reset(self, key, params):
        obs, env_state = self.env.reset(key, params)
        returns = jnp.zeros((obs.shape[0],), jnp.float32)
        stats = RunningMeanStd.prior((), self.prior_count)
        return obs, ScaleRewardState(env_state, returns, stats, jnp.float32(self.gamma))

    def step(self, key, state: ScaleRewardState, action, params):
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        returns = state.gamma * state.discounted_return + reward
        stats = state.stats.update(returns)
        scaled = reward / jnp.sqrt(stats.var + self.eps)
        done = jnp.logical_or(terminated, truncated)
        new_state = state.replace(
            env_state=env_state, discounted_return=jnp.where(done, 0.0, returns), stats=stats
        )
        return obs, new_state, scaled, terminated, truncated, info


def set_return_discount(state, gamma):
    """`state` with ScaleReward's discount set to `gamma` (a number or a traced scalar);
    unchanged when the stack does not scale rewards."""
    if isinstance(state, ScaleRewardState):
        return state.replace(gamma=jnp.asarray(gamma, jnp.float32))
    inner = getattr(state, "env_state", None)
    changed = set_return_discount(inner, gamma) if inner is not None else inner
    return state if changed is inner else state.replace(env_state=changed)
