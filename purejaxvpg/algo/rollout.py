"""Collect one rollout of `num_steps` steps in `num_envs` environments with lax.scan.

Only the actor runs per step; the critic evaluates the whole batch afterwards in one
pass (program.update), which is cheaper than a value call per step.
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
from flax import struct

from purejaxvpg.algo import prng
from purejaxvpg.algo.greedy import choose
from purejaxvpg.envs.spaces import ActionSpec


@struct.dataclass
class EnvRunnerState:
    """Where the environments are between rollouts (leaves have a leading [E] axis)."""

    env_state: object
    obs: jax.Array  # [E, *obs_shape], the observation the next action is chosen from
    key: jax.Array


@struct.dataclass
class RecurrentRunnerState(EnvRunnerState):
    """A recurrent policy's runner (config.recurrent 'gru'; a subclass, so the others'
    checkpoints keep their layout): also the networks' hidden states after the last
    observation they read (recurrent.RecurrentState, [E, H] leaves), and whether `obs` is the
    first of its episode (the hidden state is reset before reading it)."""

    hidden: object = None
    first: jax.Array | None = None  # [E] bool


@struct.dataclass
class Rollout:
    """One rollout, time first: every leaf is [T, E, ...]."""

    obs: jax.Array  # s_t                            [T, E, *obs_shape]
    action: jax.Array  # a_t (unclipped sample, or the mode on a greedy step)  [T, E] or [T, E, *action_shape]
    reward: jax.Array  # r_t                         [T, E]
    terminated: jax.Array  # bool                    [T, E]
    truncated: jax.Array  # bool                     [T, E]
    next_obs: jax.Array  # s'_t before auto-reset    [T, E, *obs_shape]
    episode_return: jax.Array  # of the episode ending at t (valid where finished)  [T, E]
    episode_length: jax.Array  # [T, E]
    episode_finished: jax.Array  # bool              [T, E]
    greedy: jax.Array | None = None  # bool: a_t is the mode (greedy schedule on)  [T, E]; else None
    first: jax.Array | None = None  # bool: s_t begins an episode (recurrent policies)  [T, E]; else None


def env_action(action: jax.Array, spec: ActionSpec) -> jax.Array:
    """What the environment receives: continuous actions clipped to the box.

    The policy's log-probability is always of the unclipped sample, so the gradient is
    that of the distribution that was actually sampled.
    """
    if spec.discrete:
        return action
    return jnp.clip(action, spec.low, spec.high)


def collect(
    policy: Callable[[jax.Array], object],
    env,
    env_params,
    spec: ActionSpec,
    runner: EnvRunnerState,
    num_steps: int,
    unroll: int = 1,
    greedy=None,
) -> tuple[EnvRunnerState, Rollout]:
    """Run `policy` (obs [E, ...] -> distribution) for `num_steps` steps in every env; with a
    recurrent runner (RecurrentRunnerState) `policy(hidden, obs, first) -> (hidden, distribution)`,
    its hidden state carried from step to step and `first` set after every episode's end
    (termination or truncation).

    `unroll` steps run per loop iteration (fewer iterations: less loop overhead on a GPU,
    a longer compile). `greedy`: None (every action a sample), or the probability (a scalar,
    may be traced) that a step takes the policy's mode instead (greedy.choose).

    `env` is an envs.VecEnv stack with envs.EpisodeStatistics under it (its info carries
    the episode statistics).
    """

    recurrent = isinstance(runner, RecurrentRunnerState)

    def step(runner: EnvRunnerState, _):
        if recurrent:
            hidden, dist = policy(runner.hidden, runner.obs, runner.first)
        else:
            hidden, dist = None, policy(runner.obs)
        if greedy is None:
            key, key_action, key_env = prng.step_keys(runner.key, greedy=False)
            action, took_mode = dist.sample(key_action), None
        else:
            key, key_action, key_env, key_coin = prng.step_keys(runner.key, greedy=True)
            action, took_mode = choose(dist, key_action, key_coin, greedy)
        next_obs, env_state, reward, terminated, truncated, info = env.step(
            key_env, runner.env_state, env_action(action, spec), env_params
        )
        transition = Rollout(
            obs=runner.obs,
            action=action,
            reward=reward.astype(jnp.float32),
            terminated=terminated,
            truncated=truncated,
            next_obs=info["final_observation"],
            episode_return=info["episode_return"],
            episode_length=info["episode_length"],
            episode_finished=info["episode_finished"],
            greedy=took_mode,
            first=runner.first if recurrent else None,
        )
        if not recurrent:
            return EnvRunnerState(env_state, next_obs, key), transition
        # the next observation begins an episode where this one ended (auto-reset)
        return RecurrentRunnerState(env_state, next_obs, key, hidden, terminated | truncated), transition

    runner, batch = jax.lax.scan(step, runner, None, length=num_steps, unroll=unroll)
    # trace-time checks (no runtime cost): every per-env quantity [T, E], flags bool, so an
    # environment returning [E, 1] rewards or float flags fails here, not inside GAE
    per_env = (num_steps, runner.obs.shape[0])
    names = "collect: [T, E] reward, terminated, truncated, episode_return, episode_length, episode_finished"
    chex.assert_shape([batch.reward, batch.terminated, batch.truncated, batch.episode_return,
                       batch.episode_length, batch.episode_finished], per_env, custom_message=names)
    chex.assert_type([batch.terminated, batch.truncated, batch.episode_finished], bool,
                     custom_message="collect: terminated, truncated, episode_finished")
    chex.assert_shape([batch.obs, batch.next_obs], (num_steps, *runner.obs.shape),
                      custom_message="collect: obs, next_obs [T, E, *obs_shape]")
    chex.assert_tree_shape_prefix(batch, per_env, custom_message="collect: every Rollout leaf [T, E, ...]")
    return runner, batch


def reset(env, env_params, key: jax.Array, hidden=None) -> EnvRunnerState:
    """Fresh environments (`env` is a VecEnv stack); `key` seeds the resets and the runner.
    `hidden`: a recurrent policy's initial hidden states (every observation then a first)."""
    key, key_reset = jax.random.split(key)
    obs, env_state = env.reset(key_reset, env_params)
    if hidden is None:
        return EnvRunnerState(env_state, obs, key)
    return RecurrentRunnerState(env_state, obs, key, hidden, jnp.ones(obs.shape[0], bool))
