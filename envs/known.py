"""Known-answer environments: tasks whose optimum (or value function) is known exactly.

They exist to verify learning algorithms, not to benchmark them. Each follows the
gymnax >= 1.0 contract by subclassing envs.base.Environment (auto-reset,
info["final_observation"], separate terminated / truncated flags).

Field order of the states and parameters (time, then the rest; max_steps_in_episode first)
is that of the gymnax base classes they once extended: it is the order of their pytree
leaves, which saved checkpoints hold.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from purejaxvpg.envs import spaces
from purejaxvpg.envs.base import Environment


@struct.dataclass
class StepState:
    """Position in an episode: `position` for the chain, the context of the contextual
    bandit, unused (0) for the constant-observation tasks; `time`: steps taken in it."""

    time: int
    position: jax.Array


class ConstantObservationTask(Environment):
    """A task whose every observation is the constant [1.0]: nothing to see, only actions
    (or a value) to learn.

    Subclasses give `reward(key, action, params)`; `terminates` says whether every step
    ends the episode (one-step tasks) or none does (then only the time limit cuts it).
    """

    terminates = True

    def reward(self, key, action, params):
        raise NotImplementedError  # abstract: each task defines its reward

    def step_env(self, key, state, action, params):
        new_state = StepState(position=state.position, time=state.time + 1)
        obs = jnp.ones((1,), jnp.float32)
        return obs, new_state, self.reward(key, action, params), jnp.array(self.terminates), {}

    def reset_env(self, key, params):
        return jnp.ones((1,), jnp.float32), StepState(position=jnp.int32(0), time=0)

    def observation_space(self, params):
        return spaces.Box(1.0, 1.0, (1,), jnp.float32)


@struct.dataclass
class BanditParams:
    max_steps_in_episode: int = 100  # never reached: every episode terminates after one step
    arm_means: jax.Array = struct.field(default_factory=lambda: jnp.array([0.2, 0.5, 0.9, 0.4]))
    noise_std: float = 0.1


class MultiArmedBandit(ConstantObservationTask):
    """One step per episode; pulling arm k pays arm_means[k] + N(0, noise_std^2).

    Optimal return: max(arm_means) = 0.9 with the default parameters (arm 2).
    The observation is a constant [1.0]: there is nothing to see, only arms to learn.
    """

    optimal_return = 0.9

    @property
    def default_params(self) -> BanditParams:
        return BanditParams()

    def reward(self, key, action, params):
        return params.arm_means[action] + params.noise_std * jax.random.normal(key)

    def action_space(self, params=None):
        params = params or self.default_params
        return spaces.Discrete(params.arm_means.shape[0])

    @property
    def name(self) -> str:
        return "Bandit-known"


@struct.dataclass
class TargetParams:
    max_steps_in_episode: int = 100  # never reached: every episode terminates after one step
    target: float = 0.7


class ContinuousTarget(ConstantObservationTask):
    """One step per episode; action a in [-2, 2] pays -(a - target)^2.

    The optimal action is a = target (0.7); the optimal return is 0. A Gaussian policy
    N(mu, sigma^2) earns -(mu - target)^2 - sigma^2 in expectation.
    """

    optimal_return = 0.0

    @property
    def default_params(self) -> TargetParams:
        return TargetParams()

    def reward(self, key, action, params):
        return -jnp.sum((action - params.target) ** 2)

    def action_space(self, params=None):
        return spaces.Box(-2.0, 2.0, (1,), jnp.float32)

    @property
    def name(self) -> str:
        return "ContinuousTarget-known"


@struct.dataclass
class ChainParams:
    max_steps_in_episode: int = 100


class Chain(Environment):
    """A chain of `length` states; every step moves one state right and pays 1.

    The action (Discrete(2)) does not matter, so every policy has the same values:
    from state i the episode has length - i steps left and terminates after the last, so

        V(s_i) = sum_{k=0}^{length-1-i} gamma^k = (1 - gamma^(length - i)) / (1 - gamma).

    Observations are one-hot positions. The return of every episode is `length`.
    `length` fixes the observation shape, so it is a constructor argument, not a parameter.
    """

    def __init__(self, length: int = 5):
        super().__init__()
        self.length = length

    @property
    def default_params(self) -> ChainParams:
        return ChainParams()

    def step_env(self, key, state, action, params):
        position = state.position + 1
        new_state = StepState(position=position, time=state.time + 1)
        terminated = position >= self.length
        obs = self._one_hot(jnp.minimum(position, self.length - 1))
        return obs, new_state, jnp.float32(1.0), terminated, {}

    def reset_env(self, key, params):
        state = StepState(position=jnp.int32(0), time=0)
        return self._one_hot(state.position), state

    def _one_hot(self, position):
        return jax.nn.one_hot(position, self.length, dtype=jnp.float32)

    def values(self, gamma: float):
        """Closed-form V(s_i), i = 0 .. length-1, for every policy."""
        import numpy as np

        remaining = self.length - np.arange(self.length)
        return (1 - gamma**remaining) / (1 - gamma) if gamma < 1 else remaining.astype(float)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (self.length,), jnp.float32)

    @property
    def name(self) -> str:
        return "Chain-known"


@struct.dataclass
class TimeLimitParams:
    max_steps_in_episode: int = 16


class TimeLimitTask(ConstantObservationTask):
    """Never terminates: every step pays 1, and the time limit cuts (truncates) each
    episode after `max_steps_in_episode` steps. The action (Discrete(2)) does not matter.

    The observation does not show the time, so the limit is not part of the task: the value
    of the one observation is V = sum_k gamma^k = 1 / (1 - gamma) for every policy, which a
    learner that bootstraps at truncation learns. One that treats the cut as termination
    learns instead the average, over the steps t = 0 .. H - 1 it visits, of the
    finite-horizon values (1 - gamma^(H - t)) / (1 - gamma), H = max_steps_in_episode.
    """

    terminates = False

    @property
    def default_params(self) -> TimeLimitParams:
        return TimeLimitParams()

    def reward(self, key, action, params):
        return jnp.float32(1.0)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    @property
    def name(self) -> str:
        return "TimeLimit-known"


@struct.dataclass
class ContextualBanditParams:
    max_steps_in_episode: int = 100  # never reached: every episode terminates after one step
    offset: float = 100.0


class ContextualBandit(Environment):
    """One step per episode: a context c in {0, 1} is drawn at reset and shown as the
    observation [offset - 1] (c = 0) or [offset + 1] (c = 1); action c pays 1, the other 0.

    Optimal return 1; a policy that cannot tell the contexts apart earns 0.5. The large
    offset (100) makes the observations need normalisation: with the running statistics the
    two contexts are about -1 and +1; with none (mean 0, variance 1, clipped at 10) both
    become 10, and no policy can tell them apart.
    """

    optimal_return = 1.0

    @property
    def default_params(self) -> ContextualBanditParams:
        return ContextualBanditParams()

    def step_env(self, key, state, action, params):
        new_state = StepState(position=state.position, time=state.time + 1)
        reward = (action == state.position).astype(jnp.float32)
        return self._observe(state.position, params), new_state, reward, jnp.array(True), {}

    def reset_env(self, key, params):
        context = jax.random.bernoulli(key).astype(jnp.int32)
        return self._observe(context, params), StepState(position=context, time=0)

    @staticmethod
    def _observe(context, params):
        return jnp.full((1,), params.offset + 2.0 * context - 1.0, jnp.float32)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(params.offset - 1.0, params.offset + 1.0, (1,), jnp.float32)

    @property
    def name(self) -> str:
        return "ContextualBandit-known"


@struct.dataclass
class MemoryCueParams:
    max_steps_in_episode: int = 100  # never reached: every episode ends at its choice
    delay: int = 3  # the choice comes `delay` steps after the cue


class MemoryCue(Environment):
    """A cue shown once, a choice later: the known-answer memory task.

    At reset a cue c in {0, 1} is drawn; the observation is [2c - 1, 0] on step 0 only,
    then [0, 0], and [0, 1] on step `delay` (the choice step, delay >= 1). The action on the
    choice step pays 1 if it equals c, and ends the episode; every other action pays 0.

    Optimal return 1, for a policy that remembers the cue. A memoryless policy sees [0, 1]
    at every choice whatever the cue, so its choice is independent of c: it earns exactly
    0.5 in expectation (delay 0, the cue and the choice on one step: no memory needed).
    """

    optimal_return = 1.0
    memoryless_return = 0.5

    @property
    def default_params(self) -> MemoryCueParams:
        return MemoryCueParams()

    def step_env(self, key, state, action, params):
        choice = state.time == params.delay
        reward = jnp.where(choice, (action == state.position).astype(jnp.float32), 0.0)
        new_state = StepState(position=state.position, time=state.time + 1)
        return self._observe(new_state, params), new_state, reward, choice, {}

    def reset_env(self, key, params):
        state = StepState(position=jax.random.bernoulli(key).astype(jnp.int32), time=0)
        return self._observe(state, params), state

    @staticmethod
    def _observe(state, params):
        cue = jnp.where(state.time == 0, 2.0 * state.position - 1.0, 0.0)
        return jnp.stack([cue, (state.time == params.delay).astype(jnp.float32)]).astype(jnp.float32)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (2,), jnp.float32)

    @property
    def name(self) -> str:
        return "MemoryCue-known"


KNOWN_ENVS = {
    "Bandit-known": MultiArmedBandit,
    "ContinuousTarget-known": ContinuousTarget,
    "Chain-known": Chain,
    "TimeLimit-known": TimeLimitTask,
    "ContextualBandit-known": ContextualBandit,
    "MemoryCue-known": MemoryCue,
}
