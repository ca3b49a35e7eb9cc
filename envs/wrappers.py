"""Wrappers that keep the gymnax >= 1.0 step contract."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class EpisodeStatisticsState:
    env_state: object
    episode_return: jax.Array  # return of the episode in progress
    episode_length: jax.Array  # steps of the episode in progress


class EpisodeStatistics:
    """Track the undiscounted return and length of each episode.

    An episode ends on termination *or* truncation. On the step that ends it, ``info``
    carries ``episode_return`` / ``episode_length`` of that whole episode and
    ``episode_finished = True``; the running counters then restart at zero, so two
    episodes are never mixed.
    """

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        return getattr(self.env, name)

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
