"""The wrapper stack a config asks for, built the same way for training and evaluation.

Order (inside out): env -> EpisodeStatistics (returns are the env's own, before any
reward change) -> RescaleAction -> VecEnv -> NormalizeObservation -> ScaleReward.
Evaluation uses the same stack with the observation statistics frozen (taken from the
trained run) and no reward scaling.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from purejaxvpg import envs
from purejaxvpg.config import Config


@dataclasses.dataclass(frozen=True)
class EnvStack:
    env: object  # VecEnv stack: reset/step on [num_envs] batches
    env_params: object
    spec: envs.ActionSpec
    obs_shape: tuple[int, ...]  # of one environment's observation
    num_envs: int

    @property
    def horizon(self) -> int:
        """Steps after which every episode has ended (the time limit)."""
        return int(self.env_params.max_steps_in_episode)


def base_env(config: Config, env=None, env_params=None):
    """(env, params) before any wrapper: `env` itself when given (pjv.train(env=...), with
    config.env_params applied to `env_params`), else built from config.env_id."""
    from purejaxvpg.envs import registry

    if env is None:
        return registry.build(config.env_id, dict(config.env_params))
    params = env.default_params if env_params is None else env_params
    params = registry.apply_params(config.env_id, params, dict(config.env_params))
    registry.check_user_env(env, params)
    return env, params


def build(config: Config, num_envs: int, evaluation: bool = False, env=None, env_params=None) -> EnvStack:
    """The config's wrapper stack of `num_envs` environments, its environment built anew
    (`env`/`env_params`: a user's environment object instead of config.env_id's). A run
    builds its environment once, in `Agent.build`, and wraps it with `wrap`."""
    return wrap(config, base_env(config, env, env_params), num_envs, evaluation)


def check_image(config: Config, obs_shape: tuple[int, ...]) -> None:
    """ValueError naming `encoder` unless the observations are [H, W, C] images the
    convolutions fit in (each 3x3 one takes 2 off H and W)."""
    if len(obs_shape) != 3:
        raise ValueError(
            f"encoder: 'cnn' reads [H, W, C] images; {config.env_id}'s observations have shape {obs_shape}. "
            "Use encoder 'mlp' (it flattens any shape).")
    least = 2 * len(config.cnn_channels) + 1
    if min(obs_shape[:2]) < least:
        raise ValueError(
            f"cnn_channels: {len(config.cnn_channels)} 3x3 convolutions need images of at least {least}x{least}; "
            f"{config.env_id}'s are {obs_shape[0]}x{obs_shape[1]}.")


def wrap(config: Config, base: tuple, num_envs: int, evaluation: bool = False) -> EnvStack:
    """The config's wrapper stack of `num_envs` environments around `base`, an (env, params)
    pair from `base_env`; builds no environment."""
    env, env_params = base
    env = envs.EpisodeStatistics(env)
    if config.rescale_actions:
        inner = envs.action_spec(env, env_params)
        if inner.discrete:
            raise ValueError(
                f"rescale_actions: only for continuous (Box) action spaces; {config.env_id} "
                "has a Discrete one."
            )
        if not (np.isfinite(inner.low).all() and np.isfinite(inner.high).all()):
            raise ValueError(
                f"rescale_actions: maps [-1, 1] onto the action box, which must be bounded; {config.env_id}'s "
                f"Box has low {inner.low.tolist()} and high {inner.high.tolist()} (an infinite bound would "
                "send every action to infinity). Leave rescale_actions off for this environment."
            )
        env = envs.RescaleAction(env)
    spec = envs.action_spec(env, env_params)
    obs_shape = tuple(int(d) for d in env.observation_space(env_params).shape)
    if config.encoder == "cnn":
        check_image(config, obs_shape)
    env = envs.VecEnv(env, num_envs)
    if config.normalize_obs:
        env = envs.NormalizeObservation(env, frozen=evaluation, per_channel=config.encoder == "cnn")
    if config.scale_rewards and not evaluation:
        # config.gamma is the default; the trainer sets each run's own (a sweep's) in the
        # state with envs.set_return_discount
        env = envs.ScaleReward(env, config.gamma)
    return EnvStack(env, env_params, spec, obs_shape, num_envs)
