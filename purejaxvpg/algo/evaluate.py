"""Evaluation episodes inside jit: the greedy policy and the stochastic one.

Greedy acts with the distribution's mode (the reference text's "pick the best known
action"); stochastic samples as in training. Each evaluation runs `num_episodes`
fresh environments for one episode each, with observation statistics frozen at their
trained values and the environment's own (unscaled) rewards. An episode still running
after `eval_steps` steps is cut there and counted with its return and length so far.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from flax import struct

from purejaxvpg import envs
from purejaxvpg.algo import envstack
from purejaxvpg.algo.metrics import EVAL_METRIC_NAMES, EvalMetrics  # noqa: F401  (re-exported)
from purejaxvpg.algo.networks import Actor, RecurrentActor
from purejaxvpg.algo.rollout import env_action
from purejaxvpg.config import EVAL_STEPS_CAP, Config


@struct.dataclass
class Episodes:
    """One episode per environment: returns and lengths [K], finished [K] bool (False: cut
    at the evaluation's step limit, its return and length those so far)."""

    returns: jax.Array
    lengths: jax.Array
    finished: jax.Array

    def mean_return(self) -> jax.Array:
        """Mean over the K episodes, cut ones included."""
        return self.returns.mean()

    def mean_length(self) -> jax.Array:
        return self.lengths.mean()


def eval_steps(config: Config, stack: envstack.EnvStack) -> int:
    """Steps an evaluation plays: config.eval_max_steps, or the environment's time limit
    (every episode has ended by then) capped at EVAL_STEPS_CAP."""
    return config.eval_max_steps or min(stack.horizon, EVAL_STEPS_CAP)


def make_evaluate(config: Config, actor: Actor, stack: envstack.EnvStack):
    """Return `evaluate(actor_params, env_state, key) -> EvalMetrics` of scalars: one
    episode in each of `stack`'s environments (an evaluation stack, `Agent.stack_of`).

    `env_state` is the training environments' state (its observation statistics are
    used, frozen); pass None when the config does not normalise observations.
    Pure and vmappable over seeds.
    """
    play = make_play(stack, actor, eval_steps(config, stack))

    def evaluate(actor_params, env_state, key: jax.Array) -> EvalMetrics:
        chex.assert_shape(key, (), custom_message="evaluate: one PRNG key (vmap over seeds)")
        stats = envs.observation_stats(env_state) if config.normalize_obs else None
        # the greedy and the stochastic episodes as one loop over both (vmapped): one
        # compiled evaluation, not two; each still plays from its own key of the split
        both = jax.vmap(play, in_axes=(None, None, 0, 0))(
            actor_params, stats, jax.random.split(key), jnp.array([True, False]))
        greedy, stochastic = jax.tree.map(lambda x: x[0], both), jax.tree.map(lambda x: x[1], both)
        return EvalMetrics(
            eval_return_greedy=greedy.mean_return(),
            eval_return_stochastic=stochastic.mean_return(),
            eval_length_greedy=greedy.mean_length(),
            eval_length_stochastic=stochastic.mean_length(),
        )

    return evaluate


def make_play(stack: envstack.EnvStack, actor: Actor, steps: int):
    """Return `play(actor_params, obs_stats, key, greedy) -> Episodes`: `steps` steps of K
    environments, each environment's first episode kept. `greedy`: a Python bool, or a
    traced one (the mode or a sample chosen per step: both computed, one kept). A recurrent
    actor starts every environment from zero hidden states and resets them where an episode
    ends, as in training."""
    env, env_params, spec = stack.env, stack.env_params, stack.spec
    recurrent = isinstance(actor, RecurrentActor)

    def play(actor_params, obs_stats, key: jax.Array, greedy: bool) -> Episodes:
        key, key_reset = jax.random.split(key)
        if obs_stats is None:
            obs, env_state = env.reset(key_reset, env_params)
        else:
            obs, env_state = env.reset(key_reset, env_params, obs_stats)
        K = stack.num_envs
        first_episodes = Episodes(jnp.zeros(K, jnp.float32), jnp.zeros(K, jnp.int32), jnp.zeros(K, bool))

        def step(carry, _):
            obs, env_state, key, done, hidden, first = carry
            key, key_action, key_env = jax.random.split(key, 3)
            if recurrent:
                hidden, dist = actor.apply(actor_params, hidden, obs, first)
            else:
                dist = actor.apply(actor_params, obs)
            if isinstance(greedy, bool):
                action = dist.mode() if greedy else dist.sample(key_action)
            else:
                action = jnp.where(greedy, dist.mode(), dist.sample(key_action))
            obs, env_state, reward, terminated, truncated, info = env.step(
                key_env, env_state, env_action(action, spec), env_params
            )
            # the first episode only: its return and length grow until it finishes, then stay
            # (the environment's own reward: evaluation's stack scales none)
            running = ~done.finished
            done = Episodes(
                returns=jnp.where(running, done.returns + reward.astype(jnp.float32), done.returns),
                lengths=jnp.where(running, done.lengths + 1, done.lengths),
                finished=done.finished | info["episode_finished"],
            )
            return (obs, env_state, key, done, hidden, terminated | truncated), None

        hidden = jnp.zeros((K, actor.recurrent_size), jnp.float32) if recurrent else None
        carry = (obs, env_state, key, first_episodes, hidden, jnp.ones(K, bool))
        (_, _, _, done, _, _), _ = jax.lax.scan(step, carry, None, length=steps)
        return done

    return play
