"""XLand-MiniGrid's MiniGrid-* environments behind the gymnax >= 1.0 contract
(optional: pip install purejaxvpg[xminigrid]).

`envs.make("xminigrid/<id>")` steps the raw library environment (not its auto-reset
wrappers) and auto-resets on the same step itself. The end of an episode is read from the
library's TimeStep, never from `step_type` alone (envs.autoreset.timestep_flags):

    terminated = step_type == LAST and discount == 0     (the goal, or a failure state)
    truncated  = step_type == LAST and discount != 0     (the time limit)

The time limit is the library's own: `params.max_steps_in_episode` defaults to XLand's
`max_steps` and is written back into the library's parameters on every reset and step, so
an override (`--env-param max_steps_in_episode=20`) moves XLand's limit (and the step
penalty in its reward, 1 - 0.9 * steps / max_steps) rather than adding a second count.

Observations stay as XLand gives them: the agent's (view, view, 2) uint8 grid of
(tile id, colour id); the trainer's networks flatten them and cast to float32.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
from flax import struct

from purejaxvpg.envs import spaces
from purejaxvpg.envs.autoreset import select, timestep_flags

PREFIX = "xminigrid/"  # the names are listed in envs.suites


@struct.dataclass
class XMiniGridParams:
    # Both static (hashed into the trace, never traced): XLand's own params are static
    # fields, and the limit is copied into them, so it cannot be a traced value.
    max_steps_in_episode: int = struct.field(pytree_node=False, default=100)
    xland: object = struct.field(pytree_node=False, default=None)  # xminigrid's EnvParams


class XMiniGridEnv:
    """One XLand-MiniGrid environment; state is the library's TimeStep."""

    def __init__(self, name: str):
        import xminigrid
        from xminigrid.core.constants import NUM_COLORS, NUM_TILES

        known = tuple(i for i in xminigrid.registered_environments() if i.startswith("MiniGrid-"))
        if name not in known:
            raise ValueError(
                f"env_id: {PREFIX}{name} is not one of XLand-MiniGrid's MiniGrid-* environments "
                f"(the XLand-* ones need a benchmark download); allowed: {', '.join(known)}."
            )
        self.xland_name = name
        self._env, self._xland_params = xminigrid.make(name)
        self._high = (NUM_TILES - 1, NUM_COLORS - 1)  # largest tile id, largest colour id

    @property
    def name(self) -> str:
        return PREFIX + self.xland_name

    @property
    def default_params(self) -> XMiniGridParams:
        return XMiniGridParams(int(self._xland_params.max_steps), self._xland_params)

    def library_params(self, params: XMiniGridParams | None):
        """XLand's EnvParams with its time limit set to `params.max_steps_in_episode`."""
        params = params or self.default_params
        limit = params.max_steps_in_episode
        if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit <= 0:
            # XLand truncates when step_num == max_steps: any other value would never end an episode
            raise ValueError(
                f"env_params.max_steps_in_episode: {self.name} needs a positive integer, got {limit!r}."
            )
        return params.xland.replace(max_steps=int(limit))

    def action_space(self, params=None):
        return spaces.Discrete(int(self._env.num_actions(self.library_params(params))))

    def observation_space(self, params=None):
        shape = tuple(int(d) for d in self._env.observation_shape(self.library_params(params)))
        high = jnp.broadcast_to(jnp.asarray(self._high, jnp.uint8), shape)
        return spaces.Box(jnp.zeros(shape, jnp.uint8), high, shape, jnp.uint8)

    def reset(self, key, params=None):
        timestep = _strong(self._env.reset(self.library_params(params), key))
        return timestep.observation, timestep

    def step(self, key, state, action, params=None):
        stepped = _strong(self._env.step(self.library_params(params), state, action))
        terminated, truncated = timestep_flags(stepped.step_type, stepped.discount)
        obs, new_state = select(terminated | truncated, self.reset(key, params), (stepped.observation, stepped))
        info = {"final_observation": stepped.observation, "terminated": terminated, "truncated": truncated}
        return obs, new_state, stepped.reward.astype(jnp.float32), terminated, truncated, info


def make(name: str):
    """(env, params) for "xminigrid/<name>" (envs.suites' builder)."""
    env = XMiniGridEnv(name)
    return env, env.default_params


def _strong(tree):
    """XLand's reset gives weakly typed scalars (step_num, reward, discount); make every leaf
    strongly typed so reset and step states agree (lax.scan carries require it)."""
    return jax.tree.map(lambda x: jnp.asarray(x, x.dtype), tree)
