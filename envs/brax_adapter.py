"""Brax environments behind the gymnax >= 1.0 contract (optional: pip install purejaxvpg[brax]).

`envs.make("brax/<name>")` gives an environment whose step auto-resets, reports the time
limit as `truncated` (never as `terminated`), and keeps the pre-reset observation in
info["final_observation"], exactly like the gymnax environments. Brax's own wrappers are
not used: they fold the time limit into `done`.
"""

from __future__ import annotations

import contextlib
import io
import sys

import jax
import jax.numpy as jnp
from flax import struct

from purejaxvpg.envs import spaces
from purejaxvpg.envs.autoreset import end_flags, raw_key, select

PREFIX = "brax/"  # the names are listed in envs.suites


# MuJoCo's MJX (imported by brax) prints these when its optional warp backend is missing;
# brax does not use that backend, so the lines are noise on every command.
_WARP_NOISE = ("Failed to import warp:", "Failed to import mujoco_warp:")


def import_brax_envs():
    """Import ``brax.envs`` only when a Brax environment is built, dropping MJX's two warp
    lines from its import-time output (any other output is passed through)."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            from brax import envs as brax_envs
    finally:  # an ImportError goes on to envs.suites, which names the extra
        lines = captured.getvalue().splitlines(keepends=True)
        sys.stdout.write("".join(line for line in lines if not line.startswith(_WARP_NOISE)))
    return brax_envs


@struct.dataclass
class BraxParams:
    max_steps_in_episode: int = 1000


@struct.dataclass
class BraxState:
    brax_state: object
    time: jax.Array  # steps taken in the current episode


class BraxEnv:
    """One Brax environment; actions in [-1, 1]^action_size, as Brax defines them."""

    def __init__(self, name: str, backend: str = "generalized"):
        brax_envs = import_brax_envs()
        self.brax_name = name
        self.backend = backend
        self._env = brax_envs.get_environment(name, backend=backend)

    @property
    def name(self) -> str:
        return PREFIX + self.brax_name

    @property
    def default_params(self) -> BraxParams:
        return BraxParams()

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (self._env.action_size,), jnp.float32)

    def observation_space(self, params):
        return spaces.Box(-jnp.inf, jnp.inf, (self._env.observation_size,), jnp.float32)

    def reset(self, key, params=None):
        brax_state = _strong(self._env.reset(raw_key(key)))
        return brax_state.obs, BraxState(brax_state, jnp.zeros((), jnp.int32))

    def step(self, key, state: BraxState, action, params=None):
        params = params or self.default_params
        stepped = _strong(self._env.step(state.brax_state, action))
        time = state.time + 1
        # Brax's own end condition (a fall) has no time limit in it
        terminated, truncated = end_flags(stepped.done > 0.5, time, params.max_steps_in_episode)
        obs, new_state = select(
            terminated | truncated, self.reset(key, params), (stepped.obs, BraxState(stepped, time))
        )
        info = {"final_observation": stepped.obs, "terminated": terminated, "truncated": truncated}
        return obs, new_state, stepped.reward, terminated, truncated, info


def make(name: str):
    """(env, params) for "brax/<name>" (envs.suites' builder)."""
    env = BraxEnv(name)
    return env, env.default_params


def _strong(tree):
    """Brax leaves some fields as Python floats; make every leaf a strongly typed array so
    reset and step states have the same types (lax.scan carries require it)."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.result_type(x)) if not hasattr(x, "dtype") else x, tree)

