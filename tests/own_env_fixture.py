"""A user's environment, outside envs/: imported by its path "own_env_fixture:make_env"
(tests/ on PYTHONPATH), as a fresh `--resume` or `eval` process must do."""

import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class PickParams(environment.EnvParams):
    best_arm: int = 2
    max_steps_in_episode: int = 8


class PickArm(environment.Environment):
    """Every step pays 1 for arm `best_arm` of 3, else 0; never terminates, so each episode
    is cut (truncated) after max_steps_in_episode steps. Best return: max_steps_in_episode."""

    @property
    def default_params(self) -> PickParams:
        return PickParams()

    def step_env(self, key, state, action, params):
        state = environment.EnvState(time=state.time + 1)
        reward = (action == params.best_arm).astype(jnp.float32)
        return jnp.ones((2,), jnp.float32), state, reward, jnp.array(False), {}

    def reset_env(self, key, params):
        return jnp.ones((2,), jnp.float32), environment.EnvState(time=0)

    def observation_space(self, params):
        return spaces.Box(1.0, 1.0, (2,), jnp.float32)

    def action_space(self, params=None):
        return spaces.Discrete(3)


def make_env():
    """The factory an import-path id names: (env, params)."""
    return PickArm(), PickParams()


def make_env_only():
    return PickArm()


def broken_factory():
    raise RuntimeError("no simulator licence")


def not_an_env():
    return 42


