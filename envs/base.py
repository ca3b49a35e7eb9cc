"""`Environment`: the contract's `reset` and `step` (auto-reset, time limit, final observation)
around a subclass's raw transition, so that envs.known (and a user's environment) need no gymnax.

A subclass gives:

    default_params                               a dataclass with max_steps_in_episode
    reset_env(key, params) -> (obs, state)       state.time = 0 at the start of an episode
    step_env(key, state, action, params) -> (obs, state, reward, terminated, info)
                                                 no reset; the new state.time counts the steps
    action_space(params), observation_space(params)

and `step` ends the episode as truncated when state.time reaches params.max_steps_in_episode
(terminated, a real ending, is the subclass's), returns the next episode's first observation
and state on the step an episode ends, and keeps the observation it ended on in
info["final_observation"] (with info["terminated"] and info["truncated"]).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


class Environment:
    """Base class of a JAX environment with the contract of `envs/__init__.py`; see the module."""

    @property
    def default_params(self):
        raise NotImplementedError  # abstract: each environment's own parameter dataclass

    @property
    def name(self) -> str:
        return type(self).__name__

    def reset_env(self, key, params):
        raise NotImplementedError  # abstract

    def step_env(self, key, state, action, params):
        raise NotImplementedError  # abstract

    def action_space(self, params=None):
        raise NotImplementedError  # abstract

    def observation_space(self, params):
        raise NotImplementedError  # abstract

    # jitted (self static), so that a step called eagerly (tests, a notebook) is one compiled call
    @functools.partial(jax.jit, static_argnums=0)
    def reset(self, key, params=None):
        """(obs, state) of a new episode."""
        return self.reset_env(key, self.default_params if params is None else params)

    @functools.partial(jax.jit, static_argnums=0)
    def step(self, key, state, action, params=None):
        """(obs, state, reward, terminated, truncated, info): one step, reset when it ends the
        episode. terminated and truncated are bool []; both are set when a real ending falls on
        the limit's step."""
        params = self.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        obs, state, reward, terminated, info = self.step_env(key_step, state, action, params)
        truncated = state.time >= params.max_steps_in_episode
        ended = jnp.logical_or(terminated, truncated)
        first_obs, first_state = self.reset_env(key_reset, params)

        def pick(reset_leaf, step_leaf):
            return jax.lax.select(ended, reset_leaf, step_leaf)

        next_state = jax.tree.map(pick, first_state, state)
        next_obs = jax.tree.map(pick, first_obs, obs)
        info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs}
        return next_obs, next_state, reward, terminated, truncated, info
