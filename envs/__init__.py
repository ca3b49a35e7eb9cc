"""JAX-native environments for purejaxvpg, imported as `purejaxvpg.envs`
(`from purejaxvpg import envs`): the repository's top-level envs/ folder, installed under
the package so that nothing named plain `envs` shadows a user project's own.

One contract for every environment (gymnax >= 1.0):
``reset(key, params) -> (obs, state)`` and
``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)``
with auto-reset and ``info["final_observation"]`` holding the observation before the reset.
"""

from purejaxvpg.envs import suites
from purejaxvpg.envs.check import check_env
from purejaxvpg.envs.known import (
    KNOWN_ENVS,
    Chain,
    ContextualBandit,
    ContinuousTarget,
    MultiArmedBandit,
    TimeLimitTask,
)
from purejaxvpg.envs.registry import make, register, registered
from purejaxvpg.envs.spaces import ActionSpec, action_spec
from purejaxvpg.envs.wrappers import (
    EpisodeStatistics,
    EpisodeStatisticsState,
    FlattenObservation,
    NormalizeObservation,
    RescaleAction,
    RunningMeanStd,
    ScaleReward,
    VecEnv,
    Wrapper,
    observation_stats,
    set_return_discount,
)

__all__ = [
    "KNOWN_ENVS",
    "ActionSpec",
    "Chain",
    "ContextualBandit",
    "ContinuousTarget",
    "EpisodeStatistics",
    "EpisodeStatisticsState",
    "FlattenObservation",
    "MultiArmedBandit",
    "NormalizeObservation",
    "RescaleAction",
    "RunningMeanStd",
    "ScaleReward",
    "TimeLimitTask",
    "VecEnv",
    "Wrapper",
    "action_spec",
    "check_env",
    "make",
    "observation_stats",
    "register",
    "registered",
    "set_return_discount",
    "suites",
]
