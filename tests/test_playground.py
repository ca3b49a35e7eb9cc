"""The MuJoCo Playground adapter keeps the contract (runs only where the playground extra is installed).

Every reference is the raw library: `env._env` is Playground's own environment, stepped on the
adapter's pre-step state, and the time limit is read from Playground's own config. Tracing MJX
is slow on a CPU, so one compiled rollout serves the contract, both time limits and the
termination (its parameters are arguments, not constants).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import smoke_train

from purejaxvpg import envs

pytest.importorskip("mujoco_playground")

ENV_ID = "playground/CartpoleBalance"  # the cheapest to trace and compile here (see readme_playground.md)
NUM_ENVS, NUM_STEPS = 64, 1000
LIMIT = 7
POISON_STEP, POISON_ENV = 10, 3


@pytest.fixture(scope="module")
def cartpole():
    env, params = envs.make(ENV_ID)

    def rollout(key, params, poison):
        """NUM_STEPS random steps of NUM_ENVS envs; where poison[t, i], env i's qpos is made NaN
        just before step t (a diverged simulation: Playground's own `done`)."""
        vec = envs.VecEnv(env, NUM_ENVS)
        obs, state = vec.reset(key, params)

        def step(carry, inputs):
            obs, state = carry
            key, poisoned = inputs
            key_act, key_env = jax.random.split(key)
            data = state.pg_state.data
            qpos = jnp.where(poisoned[:, None], jnp.nan, data.qpos)
            state = state.replace(pg_state=state.pg_state.replace(data=data.replace(qpos=qpos)))
            action = jax.random.uniform(key_act, (NUM_ENVS, 1), minval=-1.0, maxval=1.0)
            raw = jax.vmap(env._env.step)(state.pg_state, action)
            next_obs, state, reward, term, trunc, info = vec.step(key_env, state, action, params)
            out = (next_obs, reward, term, trunc, info["final_observation"], raw.obs, raw.done, state.time)
            return (next_obs, state), out

        return jax.lax.scan(step, (obs, state), (jax.random.split(key, NUM_STEPS), poison))[1]

    run = jax.jit(rollout)
    no_poison = np.zeros((NUM_STEPS, NUM_ENVS), bool)
    poison = no_poison.copy()
    poison[POISON_STEP, POISON_ENV] = True
    return env, params, {
        "default": run(jax.random.key(0), params, no_poison),
        "limit": run(jax.random.key(1), params.replace(max_steps_in_episode=LIMIT), no_poison),
        "poison": run(jax.random.key(2), params, poison),
    }


def test_playground_ids_are_listed():
    assert ENV_ID in envs.registered() and "playground/HumanoidRun" in envs.registered()


def test_playground_contract_on_random_steps(cartpole):
    env, params, runs = cartpole
    assert not envs.action_spec(env, params).discrete
    next_obs, reward, term, trunc, final, raw_obs, raw_done, _ = (np.asarray(x) for x in runs["default"])
    assert next_obs.shape == final.shape == (NUM_STEPS, NUM_ENVS, env.observation_space(params).shape[0])
    assert next_obs.dtype == final.dtype == np.float32 and reward.dtype == np.float32
    assert term.dtype == bool and trunc.dtype == bool and reward.shape == (NUM_STEPS, NUM_ENVS)
    assert not (term & trunc).any() and not raw_done.any()
    assert np.isfinite(next_obs).all() and np.isfinite(reward).all()
    np.testing.assert_allclose(final, raw_obs, rtol=1e-6, atol=1e-6)  # every step: the raw post-step obs
    done = term | trunc
    np.testing.assert_allclose(next_obs[~done], raw_obs[~done], rtol=1e-6, atol=1e-6)
    assert not np.allclose(next_obs[done], raw_obs[done])  # after an ending: the next episode's first obs


def test_playground_own_time_limit_is_truncation_on_its_last_step(cartpole):
    from mujoco_playground import registry

    env, params, runs = cartpole
    config = registry.dm_control_suite.get_default_config("CartpoleBalance")
    assert params.max_steps_in_episode == config.episode_length // config.action_repeat == NUM_STEPS
    _, _, term, trunc, *_ = (np.asarray(x) for x in runs["default"])
    assert not term.any()
    assert trunc[-1].all() and not trunc[:-1].any()  # exactly the 1000th step of every env


def test_playground_override_time_limit_is_truncation_with_raw_final_observation(cartpole):
    _, _, runs = cartpole
    next_obs, _, term, trunc, final, raw_obs, _, time = (np.asarray(x) for x in runs["limit"])
    steps = np.arange(1, NUM_STEPS + 1)[:, None]
    np.testing.assert_array_equal(trunc, np.broadcast_to(steps % LIMIT == 0, trunc.shape))
    assert not term.any()
    np.testing.assert_allclose(final[trunc], raw_obs[trunc], rtol=1e-6, atol=1e-6)
    assert (time[trunc] == 0).all() and (time[~trunc] > 0).all()  # auto-reset on the limit step


def test_playground_diverged_physics_is_termination_and_resets(cartpole):
    _, _, runs = cartpole
    next_obs, reward, term, trunc, final, raw_obs, raw_done, time = (np.asarray(x) for x in runs["poison"])
    assert raw_done[POISON_STEP, POISON_ENV] == 1.0  # Playground's own end flag
    expected = np.zeros_like(term)
    expected[POISON_STEP, POISON_ENV] = True
    np.testing.assert_array_equal(term, expected)
    assert not trunc[POISON_STEP, POISON_ENV] and not trunc[:-1].any()
    assert np.isnan(final[POISON_STEP, POISON_ENV]).any()
    np.testing.assert_array_equal(final[POISON_STEP, POISON_ENV], raw_obs[POISON_STEP, POISON_ENV])
    assert np.isfinite(next_obs).all() and time[POISON_STEP, POISON_ENV] == 0  # reset to a fresh episode
    assert time[-1, POISON_ENV] == NUM_STEPS - POISON_STEP - 1 and not trunc[-1, POISON_ENV]


CHECKED = ("CartpoleBalance",)  # the cheapest; every name: PJV_PLAYGROUND_ALL=1 (~7 min on a busy 2-core CPU)
ALL_NAMES = next(s for s in envs.suites.SUITES if s.prefix == "playground/").names


@pytest.mark.parametrize("name", ALL_NAMES)
def test_playground_check_env(name):
    if name not in CHECKED and not os.environ.get("PJV_PLAYGROUND_ALL"):
        pytest.skip("tracing MJX takes 5-30 s per name on a CPU: set PJV_PLAYGROUND_ALL=1 to check every name")
    env, params = envs.make("playground/" + name)
    envs.check_env(env, params)
    key = jax.random.key(0)
    reset_state = jax.eval_shape(env.reset, key, params)[1]
    step_state = jax.eval_shape(lambda k: env.step(k, env.reset(k, params)[1], jnp.zeros(env.action_space().shape),
                                                   params)[1], key)
    assert jax.tree.structure(reset_state) == jax.tree.structure(step_state)  # a lax.scan carry
    for a, b in zip(jax.tree.leaves(reset_state), jax.tree.leaves(step_state), strict=True):
        assert (a.shape, a.dtype, a.weak_type) == (b.shape, b.dtype, b.weak_type)


def test_playground_refuses_other_playground_environments():
    with pytest.raises(ValueError, match="CartpoleBalance"):
        envs.make("playground/Go1JoystickFlatTerrain")  # a locomotion task: needs the Menagerie download
    from purejaxvpg.envs.playground_adapter import make

    with pytest.raises(ValueError, match="not a dm_control_suite environment"):
        make("Go1JoystickFlatTerrain")


@pytest.mark.slow  # trains through the whole program: run with -m slow
def test_playground_training_smoke_run():
    smoke_train(ENV_ID, num_envs=4, num_steps=16, updates=2)
