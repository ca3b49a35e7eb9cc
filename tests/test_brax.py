"""The Brax adapter keeps the contract (runs only where the brax extra is installed)."""

import jax
import numpy as np
import pytest
from conftest import smoke_train

from purejaxvpg import envs

pytest.importorskip("brax")

ENV_ID = "brax/inverted_pendulum"
NUM_ENVS, NUM_STEPS, LIMIT = 16, 120, 30


def test_brax_ids_are_registered():
    assert ENV_ID in envs.registered() and "brax/halfcheetah" in envs.registered()


@pytest.mark.slow  # compiles Brax's physics step (about a minute on 2 cores): run with -m slow
def test_brax_contract_time_limit_is_truncation_and_final_observation_is_kept():
    env, params = envs.make(ENV_ID, max_steps_in_episode=LIMIT)
    assert not envs.action_spec(env, params).discrete
    vec = envs.VecEnv(envs.EpisodeStatistics(env), NUM_ENVS)
    size = env.action_space(params).shape[0]

    def rollout(key):
        obs, state = vec.reset(key, params)

        def step(carry, key):
            obs, state = carry
            key_act, key_env = jax.random.split(key)
            action = 0.2 * jax.random.normal(key_act, (NUM_ENVS, size))  # gentle: some survive LIMIT
            brax_next = jax.vmap(env._env.step)(state.env_state.brax_state, action).obs
            next_obs, state, reward, term, trunc, info = vec.step(key_env, state, action, params)
            return (next_obs, state), (next_obs, reward, term, trunc, info, brax_next)

        return jax.lax.scan(step, (obs, state), jax.random.split(key, NUM_STEPS))[1]

    next_obs, reward, term, trunc, info, brax_next = jax.jit(rollout)(jax.random.key(0))
    term, trunc = np.asarray(term), np.asarray(trunc)
    assert next_obs.shape == (NUM_STEPS, NUM_ENVS, env.observation_space(params).shape[0])
    assert term.dtype == bool and trunc.dtype == bool
    assert trunc.any(), "no episode reached the time limit"
    assert not (term & trunc).any()  # the limit is reported as truncation only
    lengths = np.asarray(info["episode_length"])[np.asarray(info["episode_finished"])]
    assert lengths.max() == LIMIT
    np.testing.assert_allclose(np.asarray(info["final_observation"]), np.asarray(brax_next), rtol=1e-5, atol=1e-5)
    done = term | trunc
    np.testing.assert_allclose(np.asarray(next_obs)[~done], np.asarray(brax_next)[~done], rtol=1e-5, atol=1e-5)
    assert np.all(np.isfinite(np.asarray(next_obs))) and np.all(np.isfinite(np.asarray(reward)))


@pytest.mark.slow  # trains through the whole program: run with -m slow
def test_brax_training_smoke_run():
    result = smoke_train(ENV_ID, num_envs=4, num_steps=32, updates=3)
    assert result.metrics["episodes_finished"].sum() > 0
