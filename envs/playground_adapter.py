"""MuJoCo Playground's DeepMind Control Suite tasks behind the gymnax >= 1.0 contract
(optional: pip install purejaxvpg[playground]).

`envs.make("playground/<name>")` builds the RAW environment (`dm_control_suite.load`), not
Playground's `wrap_for_brax_training`: that wrapper folds the time limit into `done` and
drops the observation an episode ended on. Here the time limit (the env config's
`episode_length`, in agent steps of `action_repeat` physics-control steps) is always
`truncated`, the environment's own `done` (non-finite physics) is `terminated`, and the
pre-reset observation is kept in info["final_observation"].

The pure-JAX MJX backend (impl="jax") is used on every device: Playground's default, the
Warp backend, needs a CUDA GPU and does not trace with `jax.eval_shape` on a CPU.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import warnings

import jax
import jax.numpy as jnp
from flax import struct

from purejaxvpg.envs import spaces
from purejaxvpg.envs.autoreset import end_flags, flatten_observation, raw_key, select
from purejaxvpg.envs.brax_adapter import _WARP_NOISE, _strong

PREFIX = "playground/"  # the names are listed in envs.suites
IMPL = "jax"
# MuJoCo's compiler warns through mju_warning (printed by C to stderr, and appended to
# MUJOCO_LOG.TXT) when it reads a model; these are the library's own deprecations, not the user's.
_MODEL_NOISE = ("is deprecated",)


def load_raw(name: str):
    """The raw Playground environment `name`, loaded silently (see _silenced)."""
    with _silenced():
        from mujoco_playground import registry  # a failure: envs.suites names the extra

        suite = registry.dm_control_suite
        if name not in suite.ALL_ENVS:
            raise ValueError(
                f"env_id: {PREFIX}{name} is not a dm_control_suite environment of MuJoCo Playground; "
                f"choose one of {', '.join(PREFIX + n for n in suite.ALL_ENVS)}."
            )
        return suite.load(name, config_overrides={"impl": IMPL})


@contextlib.contextmanager
def _silenced():
    """Drop MJX's missing-warp lines (Python stdout) and MuJoCo's deprecation warnings (C,
    through mju_warning) while importing and loading; anything else is passed on."""
    import mujoco

    messages, previous = [], mujoco.get_mju_user_warning()
    captured = io.StringIO()
    mujoco.set_mju_user_warning(messages.append)
    try:
        with contextlib.redirect_stdout(captured):
            yield
    finally:
        mujoco.set_mju_user_warning(previous)
        lines = captured.getvalue().splitlines(keepends=True)
        sys.stdout.write("".join(line for line in lines if not line.startswith(_WARP_NOISE)))
        for message in messages:
            if not any(noise in message for noise in _MODEL_NOISE):
                warnings.warn(f"MuJoCo: {message}", stacklevel=3)


@struct.dataclass
class PlaygroundParams:
    max_steps_in_episode: int = 1000  # agent steps; make() sets it from the env config


@struct.dataclass
class PlaygroundState:
    pg_state: object  # mujoco_playground.State
    time: jax.Array  # agent steps taken in the current episode


class PlaygroundEnv:
    """One dm_control_suite task; actions in [-1, 1]^action_size (every task's ctrlrange)."""

    def __init__(self, name: str):
        self.pg_name = name
        self._env = load_raw(name)
        config = self._env._config
        self.action_repeat = int(config.action_repeat)
        self.episode_steps = math.ceil(int(config.episode_length) / self.action_repeat)
        self._obs_size = _flat_size(jax.eval_shape(self._env.reset, jax.random.PRNGKey(0)).obs)

    @property
    def name(self) -> str:
        return PREFIX + self.pg_name

    @property
    def default_params(self) -> PlaygroundParams:
        return PlaygroundParams(max_steps_in_episode=self.episode_steps)

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (self._env.action_size,), jnp.float32)

    def observation_space(self, params):
        return spaces.Box(-jnp.inf, jnp.inf, (self._obs_size,), jnp.float32)

    def reset(self, key, params=None):
        pg_state = _strong(self._env.reset(raw_key(key)))
        return _obs(pg_state), PlaygroundState(pg_state, jnp.zeros((), jnp.int32))

    def step(self, key, state: PlaygroundState, action, params=None):
        params = params or self.default_params
        stepped = self._repeat(state.pg_state, action)
        time = state.time + 1
        # the raw `done` (non-finite physics) has no time limit in it
        terminated, truncated = end_flags(stepped.done > 0.5, time, params.max_steps_in_episode)
        obs = _obs(stepped)
        new_obs, new_state = select(
            terminated | truncated, self.reset(key, params), (obs, PlaygroundState(stepped, time))
        )
        info = {"final_observation": obs, "terminated": terminated, "truncated": truncated}
        return new_obs, new_state, jnp.asarray(stepped.reward, jnp.float32), terminated, truncated, info

    def _repeat(self, pg_state, action):
        """`action_repeat` raw steps with one action, rewards summed, done if any step was."""
        stepped = _strong(self._env.step(pg_state, action))
        if self.action_repeat == 1:
            return stepped

        def again(carry, _):
            s, reward, done = carry
            s = _strong(self._env.step(s, action))
            return (s, reward + s.reward, jnp.maximum(done, s.done)), None

        (stepped, reward, done), _ = jax.lax.scan(
            again, (stepped, stepped.reward, stepped.done), None, self.action_repeat - 1
        )
        return stepped.replace(reward=reward, done=done)


def make(name: str):
    """(env, params) for "playground/<name>" (envs.suites' builder)."""
    env = PlaygroundEnv(name)
    return env, env.default_params


def _obs(pg_state) -> jax.Array:
    """The observation as one float32 vector (a dict observation is flattened: autoreset's rule)."""
    obs = pg_state.obs
    return jnp.asarray(obs, jnp.float32) if hasattr(obs, "dtype") and obs.ndim == 1 else flatten_observation(obs)


def _flat_size(obs) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(obs))
