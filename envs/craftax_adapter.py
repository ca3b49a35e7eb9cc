"""Craftax (symbolic observations) behind the gymnax >= 1.0 contract (optional: pip install purejaxvpg[craftax]).

Craftax is a legacy gymnax-style environment: one `done` that folds its time limit
(`EnvParams.max_timesteps`) into the real endings (death, and in Classic standing in lava; in
full Craftax also beating the final boss), and an auto-reset that drops the last observation.
The adapter builds the library's non-resetting environment and runs its raw transition under
`envs.legacy.LegacyStep`, which counts steps against `max_steps_in_episode`, calls the time
limit `truncated` and any other `done` `terminated`, and keeps info["final_observation"].
The library's own `max_timesteps` is set from `max_steps_in_episode` on every call, so the two
limits never disagree. A real ending on exactly the limit step reads as `truncated` (LegacyStep
cannot tell it apart from the limit in `done`).
"""

from __future__ import annotations

import os

import jax.numpy as jnp
from flax import struct

from purejaxvpg.envs import spaces
from purejaxvpg.envs.autoreset import raw_key
from purejaxvpg.envs.legacy import LegacyStep

PREFIX = "craftax/"  # the names are listed in envs.suites


@struct.dataclass
class CraftaxParams:
    """The trainer's time limit at the top level; the library's own parameters nested (their
    `max_timesteps` is overwritten from `max_steps_in_episode` before every call)."""

    max_steps_in_episode: int
    craftax: object

    def library(self):
        return self.craftax.replace(max_timesteps=self.max_steps_in_episode)


class CraftaxRaw:
    """One Craftax environment's raw transition, speaking CraftaxParams, typed keys and purejaxvpg.envs.spaces."""

    def __init__(self, name: str):
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame is only used by craftax's play tools
        from craftax.craftax_env import make_craftax_env_from_name  # a failure: envs.suites names the extra

        try:
            self._env = make_craftax_env_from_name(name, auto_reset=False)
        except ValueError as error:
            raise ValueError(f"env_id: {PREFIX}{name}: {error}") from error
        self.craftax_name = name

    @property
    def name(self) -> str:
        return PREFIX + self.craftax_name

    @property
    def default_params(self) -> CraftaxParams:
        library = self._env.default_params
        return CraftaxParams(max_steps_in_episode=int(library.max_timesteps), craftax=library)

    def action_space(self, params=None):
        return spaces.Discrete(int(self._env.action_space(None).n))

    def observation_space(self, params=None):
        box = self._env.observation_space(self._env.default_params)
        return spaces.Box(0.0, 1.0, tuple(box.shape), jnp.float32)

    def reset_env(self, key, params: CraftaxParams):
        return self._env.reset_env(raw_key(key), params.library())

    def step_env(self, key, state, action, params: CraftaxParams):
        obs, state, reward, done, info = self._env.step_env(raw_key(key), state, action, params.library())
        return obs, state, jnp.asarray(reward, jnp.float32), jnp.asarray(done, bool), info


def make(name: str):
    """(env, params) for "craftax/<name>" (envs.suites' builder)."""
    raw = CraftaxRaw(name)
    return LegacyStep(raw), raw.default_params

