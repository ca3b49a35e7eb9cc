"""`envs.check_env` accepts every built-in environment and rejects each broken variant with its own
message; `envs.legacy.LegacyStep` lifts the time limit out of a legacy `done`."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import spaces

from purejaxvpg import envs
from purejaxvpg.envs.known import Chain, TimeLimitTask
from purejaxvpg.envs.legacy import LegacyStep

# Suite ids (envs.suites) cost seconds each to build, and each suite's own test file checks one of
# them (tests/test_brax.py, test_jumanji.py, ...); MNISTBandit downloads MNIST.
SUITE_PREFIXES = tuple(s.prefix for s in envs.suites.SUITES)
BUILT_IN_IDS = [i for i in envs.registered() if not i.startswith((*SUITE_PREFIXES, "MNIST"))]


@pytest.mark.parametrize("env_id", BUILT_IN_IDS)
def test_every_built_in_environment_passes(env_id):
    env, params = envs.make(env_id)
    envs.check_env(env, params)


class Broken:
    """Chain(length=4) with one part of its contract changed: `step_out` rewrites step's 6 values."""

    def __init__(self, step_out=None, action_space=None, observation_space=None, reset_out=None):
        self._env = Chain(length=4)
        self._step_out, self._reset_out = step_out, reset_out
        self._action_space, self._observation_space = action_space, observation_space
        self.name = "Broken"

    def reset(self, key, params):
        out = self._env.reset(key, params)
        return self._reset_out(out) if self._reset_out else out

    def step(self, key, state, action, params):
        out = self._env.step(key, state, action, params)
        return self._step_out(*out) if self._step_out else out

    def action_space(self, params):
        return self._action_space or self._env.action_space(params)

    def observation_space(self, params):
        return self._observation_space or self._env.observation_space(params)


@struct.dataclass
class NoLimitParams:
    length: int = 4


def _without_final(obs, state, reward, term, trunc, info):
    return obs, state, reward, term, trunc, {k: v for k, v in info.items() if k != "final_observation"}


BROKEN = {
    "five_value_step": (
        Broken(step_out=lambda obs, s, r, term, trunc, info: (obs, s, r, term | trunc, info)),
        r"step returned 5 values; it looks like a legacy gymnax < 1\.0 step.*LegacyStep",
    ),
    "missing_final_observation": (Broken(step_out=_without_final), r"info has no 'final_observation'"),
    "final_observation_wrong_shape": (
        Broken(step_out=lambda o, s, r, te, tr, i: (o, s, r, te, tr, {**i, "final_observation": o[:3]})),
        r"info\['final_observation'\] is float32\[3\] but the observation is float32\[4\]",
    ),
    "observation_dtype_drift": (
        Broken(step_out=lambda o, s, r, te, tr, i: (o.astype(jnp.bfloat16), s, r, te, tr, i)),
        r"observation drifts: reset gives float32\[4\], step gives bfloat16\[4\]",
    ),
    "non_bool_terminated": (
        Broken(step_out=lambda o, s, r, te, tr, i: (o, s, r, te.astype(jnp.float32), tr, i)),
        r"terminated is float32\[\]; it must be a boolean scalar",
    ),
    "non_bool_truncated": (
        Broken(step_out=lambda o, s, r, te, tr, i: (o, s, r, te, tr.astype(jnp.int32), i)),
        r"truncated is int32\[\]; it must be a boolean scalar",
    ),
    "unsupported_action_space": (
        Broken(action_space=spaces.Dict({"move": spaces.Discrete(2), "jump": spaces.Discrete(2)})),
        r"action space is Dict; purejaxvpg supports .*Discrete.*Box",
    ),
    "observation_space_wrong_shape": (
        Broken(observation_space=spaces.Box(0.0, 1.0, (5,), jnp.float32)),
        r"observation_space\(params\) has shape \[5\] but observations are float32\[4\]",
    ),
    "reset_arity": (
        Broken(reset_out=lambda out: (*out, {})),
        r"reset\(key, params\) returned a tuple of 3; it must return \(obs, state\)",
    ),
    "no_actions": (Broken(action_space=spaces.Discrete(0)), r"action space is Discrete\(0\); it needs at least one"),
    "scalar_box": (
        Broken(action_space=spaces.Box(-1.0, 1.0, (), jnp.float32)),
        r"action space is a Box of shape \(\); .*give it shape \(1,\)",
    ),
    "never_ends_an_episode": (
        Broken(step_out=lambda o, s, r, te, tr, i: (o, s, r, jnp.zeros((), bool), jnp.zeros((), bool), i)),
        r"ended no episode in 101 steps of random actions \(max_steps_in_episode \+ 1\)",
    ),
    "vector_reward": (
        Broken(step_out=lambda o, s, r, te, tr, i: (o, s, jnp.stack([r, r]), te, tr, i)),
        r"reward is float32\[2\]; it must be a numeric scalar",
    ),
}


@pytest.mark.parametrize("variant", sorted(BROKEN))
def test_broken_variant_is_rejected_with_its_own_message(variant):
    env, pattern = BROKEN[variant]
    with pytest.raises(ValueError, match=r"^env: ") as error:
        envs.check_env(env, Chain(length=4).default_params)
    message = str(error.value)
    assert re.search(pattern, message), message
    others = [p for name, (_, p) in BROKEN.items() if name != variant]
    assert not any(re.search(p, message) for p in others), message


def test_missing_time_limit_is_rejected():
    with pytest.raises(
        ValueError, match=r"^env: Chain-known's params \(NoLimitParams\) have no max_steps_in_episode"
    ):
        envs.check_env(Chain(length=4), NoLimitParams())


@pytest.mark.parametrize("limit", [8.5, 0, -5, True, float("inf"), 2**31])
def test_a_time_limit_that_is_no_whole_number_of_steps_is_rejected(limit):
    """The rule env_params follows for built-in environments, for an own environment's
    params too: before, check_env truncated 8.5 to 8 and let it through."""
    params = Chain(length=4).default_params.replace(max_steps_in_episode=limit)
    expected = (r"^env: Chain-known's max_steps_in_episode is its time limit, a whole number of steps >= 1 "
                r"and <= 2147483647 \(steps are counted in int32\); got ")
    with pytest.raises(ValueError, match=expected):
        envs.check_env(Chain(length=4), params)


def test_env_that_fails_to_trace_is_reported_as_the_envs_error():
    def bad_step(o, s, r, te, tr, i):
        raise TypeError("step_env() takes 4 positional arguments")

    with pytest.raises(
        ValueError, match=r"^env: Broken\.step\(key, state, action, params\) failed .*TypeError"
    ):
        envs.check_env(Broken(step_out=bad_step), Chain(length=4).default_params)


class LegacyTimeLimit(TimeLimitTask):
    """gymnax < 1.0 style: `done` is set by the time limit (nothing else ends an episode)."""

    def step_env(self, key, state, action, params):
        obs, new_state, reward, _, info = super().step_env(key, state, action, params)
        return obs * new_state.time, new_state, reward, new_state.time >= params.max_steps_in_episode, info


class LegacyChain(Chain):
    """gymnax < 1.0 style: `done` = reached the end of the chain or the time limit."""

    def step_env(self, key, state, action, params):
        obs, new_state, reward, terminated, info = super().step_env(key, state, action, params)
        return obs, new_state, reward, terminated | (new_state.time >= params.max_steps_in_episode), info


def _legacy_rollout(env, params, steps):
    def step(carry, key):
        obs, state, reward, term, trunc, info = env.step(key, carry, jnp.int32(0), params)
        return state, (obs, term, trunc, info["final_observation"])

    _, state = env.reset(jax.random.key(0), params)
    return jax.tree.map(np.asarray, jax.lax.scan(step, state, jax.random.split(jax.random.key(1), steps))[1])


def test_legacy_adapter_lifts_the_time_limit_into_truncated():
    base = LegacyTimeLimit()
    params = base.default_params.replace(max_steps_in_episode=3)
    env = LegacyStep(base)
    envs.check_env(env, params)
    obs, term, trunc, final = _legacy_rollout(env, params, 7)
    assert not term.any()
    np.testing.assert_array_equal(trunc, [False, False, True, False, False, True, False])
    np.testing.assert_array_equal(final[:, 0], [1, 2, 3, 1, 2, 3, 1])  # obs = time: the last one is kept
    np.testing.assert_array_equal(obs[:, 0], [1, 2, 1, 1, 2, 1, 1])  # reset_env's [1.0] after each cut


def test_legacy_adapter_keeps_a_real_ending_as_terminated():
    base = LegacyChain(length=3)
    env = LegacyStep(base)
    params = base.default_params.replace(max_steps_in_episode=100)
    obs, term, trunc, final = _legacy_rollout(env, params, 6)
    np.testing.assert_array_equal(term, [False, False, True] * 2)
    assert not trunc.any()
    np.testing.assert_array_equal(final[2], [0, 0, 1])  # the end of the chain, before the reset
    np.testing.assert_array_equal(obs[2], [1, 0, 0])  # the reset observation


def test_legacy_adapter_refuses_an_env_without_a_raw_transition():
    with pytest.raises(ValueError, match=r"^env: LegacyStep needs .* has no reset_env, step_env"):
        LegacyStep(Broken())
