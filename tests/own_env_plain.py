"""A user's environment on purejaxvpg's own base class and spaces, no gymnax: training it by
its import path "own_env_plain:make_env" (tests/ on PYTHONPATH) must not import gymnax
(tests/test_lazy.py)."""

import jax.numpy as jnp
from flax import struct

from purejaxvpg.envs import spaces
from purejaxvpg.envs.base import Environment


@struct.dataclass
class CountState:
    time: int


@struct.dataclass
class CountParams:
    max_steps_in_episode: int = 4


class PayAction(Environment):
    """Every step pays the action (0 or 1) and never terminates: episodes are cut after
    max_steps_in_episode steps. Best return: max_steps_in_episode."""

    @property
    def default_params(self) -> CountParams:
        return CountParams()

    def reset_env(self, key, params):
        return jnp.zeros((1,), jnp.float32), CountState(time=0)

    def step_env(self, key, state, action, params):
        reward = action.astype(jnp.float32)
        return jnp.zeros((1,), jnp.float32), CountState(time=state.time + 1), reward, jnp.array(False), {}

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 0.0, (1,), jnp.float32)


def make_env():
    return PayAction()
