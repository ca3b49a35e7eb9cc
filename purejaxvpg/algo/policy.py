"""A trained seed as a function from observations to environment actions.

`make_policy(agent, actor_params, obs_stats)` returns `act(obs, key=None)`: the actor of
a run's Agent (program.Agent: its environment, built once) with one seed's parameters,
after the observation normalisation the run trained with (its running statistics,
frozen), and with the action put in the environment's own format, as the trainer sends
it (rollout.env_action; RescaleAction's mapping when config.rescale_actions). No key:
the distribution's mode (the greedy policy of evaluate.py); a key: a sample. Pure and
jittable; `seed_policy` takes one seed out of a batched TrainState, for a TrainResult
(host/driver.py) or a run directory (host/policy.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from purejaxvpg import envs
from purejaxvpg.algo import prng
from purejaxvpg.algo.program import Agent
from purejaxvpg.algo.rollout import env_action
from purejaxvpg.checks import require_int
from purejaxvpg.envs.wrappers import rescale_to_box


def seed_policy(agent: Agent, state, num_seeds: int, seed: int = 0, diverged_at: int = -1,
                allow_diverged: bool = False):
    """`act` of seed `seed` of a batched TrainState [num_seeds, ...]: its actor parameters
    and observation statistics. ValueError naming `seed` unless it is in [0, num_seeds - 1],
    and unless it stayed finite: a seed that diverged (`diverged_at` >= 0, the update, or
    non-finite parameters) acts on NaN, so it is refused unless `allow_diverged`.
    `agent`: the run's (its environment object, for a run of pjv.train(env=...))."""
    seed = require_int("seed", seed, low=0, high=num_seeds - 1)
    take = lambda tree: jax.tree.map(lambda x: x[seed], tree)  # noqa: E731
    stats = envs.observation_stats(state.runner.env_state)
    params, stats = take(state.actor_params), None if stats is None else take(stats)
    finite = all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves((params, stats))
                 if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating))
    if (diverged_at >= 0 or not finite) and not allow_diverged:
        when = f"at update {diverged_at}" if diverged_at >= 0 else "(its parameters are not finite)"
        raise ValueError(
            f"seed: seed {seed} diverged {when}; its policy would act on NaN. Pick a seed that did not "
            "diverge, or pass allow_diverged=True to load it anyway."
        )
    return make_policy(agent, params, stats)


def make_policy(agent: Agent, actor_params, obs_stats: envs.RunningMeanStd | None = None):
    """Return jitted `act(obs, key=None) -> action` for one seed.

    actor_params: one seed's actor parameters (no seed axis). obs_stats: that seed's
    NormalizeObservation statistics (`envs.observation_stats(state.runner.env_state)`),
    required exactly when config.normalize_obs.

    obs: [*obs_shape] (one observation) or [B, *obs_shape]. Returns int32 [] / [B] for a
    Discrete space, float32 [*action_shape] / [B, *action_shape] in the environment's
    bounds for a Box. The parameters are arguments of the compiled function, not
    constants in it: every seed of an agent shares one compile per observation shape.
    """
    config = agent.config
    if config.normalize_obs != (obs_stats is not None):
        raise ValueError(
            "obs_stats: the run's observation statistics are needed exactly when "
            f"config.normalize_obs (here {config.normalize_obs})."
        )
    if agent.recurrent:
        return RecurrentPolicy(agent, jax.device_put(actor_params), jax.device_put(obs_stats))
    return functools.partial(_act(agent), jax.device_put(actor_params), jax.device_put(obs_stats))


class RecurrentPolicy:
    """A recurrent seed's policy (config.recurrent 'gru'): `act(obs, state, key=None) ->
    (action, state)`, the state the GRU's hidden state after the observations it has read.

        state = act.initial_state()          # at the start of every episode
        action, state = act(obs, state)      # greedy; act(obs, state, key) samples

    obs [*obs_shape] with state [H], or a batch [B, *obs_shape] with state [B, H]
    (`initial_state(B)`). Start each episode from `initial_state()`: training resets the
    hidden state at every episode's first step, so a state carried over from another episode
    is one the policy never acted from."""

    def __init__(self, agent: Agent, actor_params, obs_stats):
        self._step = functools.partial(_act(agent), actor_params, obs_stats)
        self.size = agent.config.recurrent_size

    def initial_state(self, batch: int | None = None) -> jax.Array:
        """Zeros [H], or [batch, H]."""
        return jnp.zeros((self.size,) if batch is None else (batch, self.size), jnp.float32)

    def __call__(self, obs, state, key: jax.Array | None = None):
        return self._step(obs, key, state)


@functools.lru_cache(maxsize=16)  # per Agent (compared by identity): one compile per agent
def _act(agent: Agent):
    """jit(act(actor_params, obs_stats, obs, key)) of an agent (see make_policy)."""
    stack = agent.stack_of(1)  # its NormalizeObservation normalises with frozen statistics
    spec, obs_shape = agent.stack.spec, agent.stack.obs_shape
    to_env = _env_format(agent)

    def act(actor_params, obs_stats, obs: jax.Array, key: jax.Array | None = None, state=None):
        obs = jnp.asarray(obs, jnp.float32)
        single = obs.shape == obs_shape
        if not single and obs.shape[1:] != obs_shape:
            raise ValueError(
                f"obs: one observation of shape {obs_shape} or a batch [B, *{obs_shape}], "
                f"got shape {obs.shape}."
            )
        if key is not None and not _one_key(key):
            raise ValueError(
                "key: one jax.random.key (or None for the mode), got an array of dtype "
                f"{getattr(key, 'dtype', type(key).__name__)} and shape {getattr(key, 'shape', ())}."
            )
        batch = obs[None] if single else obs  # [B, *obs_shape]
        if obs_stats is not None:
            batch = stack.env.normalize(obs_stats, batch)
        if agent.recurrent:
            size = agent.config.recurrent_size
            state = jnp.asarray(state, jnp.float32)
            if state.shape != ((size,) if single else (batch.shape[0], size)):
                want = f"[{size}]" if single else f"[{batch.shape[0]}, {size}]"
                of = "this observation" if single else "each of the B observations"
                raise ValueError(f"state: the hidden state of {of}, shape {want} (act.initial_state()), "
                                 f"got shape {state.shape}.")
            hidden = state[None] if single else state
            hidden, dist = agent.actor.apply(actor_params, hidden, batch, jnp.zeros(batch.shape[0], bool))
        else:
            dist = agent.actor.apply(actor_params, batch)
        action = dist.mode() if key is None else dist.sample(key)  # [B] or [B, A]
        action = to_env(action).reshape(batch.shape[0], *spec.shape)
        if agent.recurrent:
            return (action[0], hidden[0]) if single else (action, hidden)
        return action[0] if single else action

    return jax.jit(act)


def _one_key(key) -> bool:
    """A typed PRNG key [] or a raw uint32 key [2] (jax.random.PRNGKey)."""
    if prng.is_key(key):
        return key.shape == ()
    return getattr(key, "dtype", None) == jnp.uint32 and key.shape == (2,)


def _env_format(agent: Agent):
    """actions [B] / [B, A] from the policy -> what the environment itself receives.

    As in training: continuous actions clipped to the box the agent acts in; with
    rescale_actions that box is [-1, 1] and RescaleAction maps it onto the environment's
    own bounds, low + (a + 1) / 2 * (high - low).
    """
    spec = agent.stack.spec
    if spec.discrete or not agent.config.rescale_actions:
        return lambda action: env_action(action, spec)
    inner = envs.action_spec(*agent.base)
    low, high = inner.low.reshape(-1), inner.high.reshape(-1)
    return lambda action: rescale_to_box(env_action(action, spec), low, high)
