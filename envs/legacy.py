"""`LegacyStep(env)`: a gymnax < 1.0 style environment (`done` only) behind the gymnax >= 1.0 contract.

Legacy environments (gymnax < 1.0 code, Craftax, Kinetix-style) end an episode with one
`done` flag that mixes a real ending with the time limit, and their `step` auto-resets
before the caller can see the last observation. The adapter calls the raw transition
(`step_env`, no reset), counts steps itself against `params.max_steps_in_episode` (or the
params field named by `time_limit`, e.g. Craftax's `max_timesteps`), and
splits `done`:

    truncated  = time >= max_steps_in_episode          (the limit, never `terminated`)
    terminated = done and not truncated

so a `done` on the step the limit is reached counts as truncation: from `done` alone a real
ending on that exact step cannot be told apart from the limit. The pre-reset observation is
kept in info["final_observation"] before the adapter's own reset.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from purejaxvpg.envs.autoreset import select


@struct.dataclass
class LegacyState:
    env_state: object
    time: jax.Array  # steps taken in the current episode, counted by the adapter


class LegacyStep:
    """Wrap an environment with ``reset_env(key, params) -> (obs, state)`` and
    ``step_env(key, state, action, params) -> (obs, state, reward, done, info)`` (no auto-reset)."""

    def __init__(self, env, time_limit: str = "max_steps_in_episode"):
        missing = [
            m for m in ("reset_env", "step_env", "action_space", "observation_space") if not hasattr(env, m)
        ]
        if missing:
            raise ValueError(
                f"env: LegacyStep needs the raw (non-resetting) transition of a gymnax-style environment; "
                f"{type(env).__name__} has no {', '.join(missing)}."
            )
        self._env = env
        self._time_limit = time_limit  # the params field holding the episode's step limit

    def __getattr__(self, name):
        return getattr(self._env, name)  # name, default_params, action_space, observation_space

    def reset(self, key, params=None):
        params = self._env.default_params if params is None else params
        obs, env_state = self._env.reset_env(key, params)
        return obs, LegacyState(env_state, jnp.zeros((), jnp.int32))

    def step(self, key, state: LegacyState, action, params=None):
        params = self._env.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        obs, env_state, reward, done, info = self._env.step_env(key_step, state.env_state, action, params)
        time = state.time + 1
        truncated = time >= getattr(params, self._time_limit)
        terminated = jnp.logical_and(jnp.asarray(done, bool), ~truncated)
        next_obs, new_state = select(
            terminated | truncated, self.reset(key_reset, params), (obs, LegacyState(env_state, time))
        )
        info = {**info, "final_observation": obs}
        return next_obs, new_state, reward, terminated, truncated, info
