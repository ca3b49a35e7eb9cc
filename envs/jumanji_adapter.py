"""Jumanji environments behind the gymnax >= 1.0 contract (optional: pip install purejaxvpg[jumanji]).

Jumanji's `reset(key) -> (state, timestep)` and `step(state, action) -> (state, timestep)`
return a dm_env-style TimeStep and never reset by themselves. The adapter builds the raw
environment with `jumanji.make(id)` (no Jumanji wrapper), auto-resets on the step an episode
ends, keeps the pre-reset observation in info["final_observation"], and reads the end of an
episode from the TimeStep with `envs.autoreset.timestep_flags`, never from `step_type` alone:

    terminated = LAST and discount == 0
    truncated  = (LAST and discount != 0) or time >= max_steps_in_episode   (unless terminated)

The time limit belongs to the adapter. Jumanji 1.1.2's single-agent environments that have one
(Maze, Snake, PacMan, SlidingTilePuzzle: a `time_limit` constructor argument) end an episode at
that limit with `termination`, discount 0, the same TimeStep as a real ending. So the adapter
builds them with the library's limit out of reach (`time_limit=UNREACHABLE`), takes the
registered limit as the default `max_steps_in_episode`, and counts the steps itself: the limit
comes out `truncated`, a real ending on the same step `terminated`, and an override of either
size works. Environments without a limit get `FALLBACK_LIMIT`.

Observations (NamedTuples of grids, positions, action masks, step counts) become one float32
vector by `envs.autoreset.flatten_observation`. The policy is not masked: an action the mask
forbids is passed to the environment, which decides (a no-op in Maze and Game2048, the end of
the episode in TSP, Knapsack, CVRP, GraphColoring and Snake).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
from flax import struct

from purejaxvpg.envs import spaces
from purejaxvpg.envs.autoreset import flatten_observation, raw_key, select, timestep_flags

PREFIX = "jumanji/"  # the names are listed in envs.suites
FALLBACK_LIMIT = 1000  # max_steps_in_episode of environments without a time limit of their own
UNREACHABLE = 2**30  # the library's own time limit, where the adapter takes it over


@struct.dataclass
class JumanjiParams:
    max_steps_in_episode: int = FALLBACK_LIMIT


@struct.dataclass
class JumanjiState:
    library: object  # the Jumanji environment's state
    time: jax.Array  # steps taken in the current episode


class JumanjiEnv:
    """One single-agent Jumanji environment with a Discrete or float Box action spec."""

    def __init__(self, name: str, library_env, time_limit: int = FALLBACK_LIMIT):
        self.jumanji_name = name
        self.time_limit = int(time_limit)
        self._env = library_env
        self._action_space = _action_space(name, library_env)
        _, timestep = jax.eval_shape(library_env.reset, jax.random.PRNGKey(0))
        self._obs_size = int(sum(leaf.size for leaf in jax.tree.leaves(timestep.observation)))

    @property
    def name(self) -> str:
        return PREFIX + self.jumanji_name

    @property
    def default_params(self) -> JumanjiParams:
        return JumanjiParams(max_steps_in_episode=self.time_limit)

    def action_space(self, params=None):
        return self._action_space

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (self._obs_size,), jnp.float32)

    def reset(self, key, params=None):
        state, timestep = self._env.reset(raw_key(key))
        return flatten_observation(timestep.observation), JumanjiState(state, jnp.zeros((), jnp.int32))

    def step(self, key, state: JumanjiState, action, params=None):
        params = params or self.default_params
        library_state, timestep = self._env.step(state.library, action)
        time = state.time + 1
        terminated, truncated = timestep_flags(
            timestep.step_type, timestep.discount, time, params.max_steps_in_episode
        )
        final_obs = flatten_observation(timestep.observation)
        obs, new_state = select(
            terminated | truncated, self.reset(key, params), (final_obs, JumanjiState(library_state, time))
        )
        info = {"final_observation": final_obs, "terminated": terminated, "truncated": truncated}
        return obs, new_state, jnp.asarray(timestep.reward, jnp.float32), terminated, truncated, info


def make(name: str):
    """(env, params) for "jumanji/<name>" (envs.suites' builder); a ValueError names what is
    unsupported (an unknown id, a multi-agent or multi-discrete environment)."""
    import jumanji  # a failure: envs.suites names the extra

    if name not in jumanji.registered_environments():
        from purejaxvpg.envs.suites import suite_of

        raise ValueError(
            f"env_id: {PREFIX}{name} is not a Jumanji environment; the supported ids are "
            f"{', '.join(suite_of(PREFIX).ids)}."
        )
    library_env = _library_make(jumanji, name)
    limit = getattr(library_env, "time_limit", None)
    if limit is not None and "time_limit" in inspect.signature(type(library_env).__init__).parameters:
        library_env = _library_make(jumanji, name, time_limit=UNREACHABLE)  # the adapter counts the limit
    env = JumanjiEnv(name, library_env, FALLBACK_LIMIT if limit is None else int(limit))
    return env, env.default_params


def _library_make(jumanji, name: str, **kwargs):
    try:
        return jumanji.make(name, **kwargs)
    except Exception as error:  # noqa: BLE001 -- e.g. Sokoban-v0 offline: its levels are a download
        raise ValueError(
            f"env_id: {PREFIX}{name}: jumanji.make failed ({type(error).__name__}: {error})."
        ) from error


def _action_space(name: str, library_env):
    """Discrete for a DiscreteArray, Box for a float BoundedArray, with one scalar reward;
    anything else is refused, naming the spec."""
    from jumanji import specs

    reward_shape = tuple(library_env.reward_spec.shape)
    if reward_shape != ():
        raise ValueError(
            f"env_id: {PREFIX}{name} is a multi-agent environment (reward spec of shape {list(reward_shape)}); "
            "purejaxvpg trains one agent with a scalar reward."
        )
    spec = library_env.action_spec
    if type(spec) is specs.DiscreteArray:
        return spaces.Discrete(int(spec.num_values))
    if type(spec) is specs.BoundedArray and jnp.issubdtype(spec.dtype, jnp.floating):
        low = jnp.broadcast_to(jnp.asarray(spec.minimum, spec.dtype), spec.shape)
        high = jnp.broadcast_to(jnp.asarray(spec.maximum, spec.dtype), spec.shape)
        return spaces.Box(low, high, tuple(spec.shape), spec.dtype)
    raise ValueError(
        f"env_id: {PREFIX}{name} has a {type(spec).__name__} action spec "
        f"(shape {list(spec.shape)}, dtype {jnp.dtype(spec.dtype).name}); purejaxvpg supports "
        "specs.DiscreteArray (Discrete) and float specs.BoundedArray (Box) only."
    )

