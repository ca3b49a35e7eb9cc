"""The rollout keeps the information GAE needs: unclipped actions, both end flags, s'."""

import jax
import jax.numpy as jnp
import numpy as np

from purejaxvpg import envs
from purejaxvpg.algo import rollout
from purejaxvpg.algo.distributions import DiagGaussian


def test_final_observation_is_pre_reset_and_actions_are_unclipped():
    env, params = envs.make("Pendulum-v1")
    env = envs.EpisodeStatistics(env)
    spec = envs.action_spec(env, params)
    env = envs.VecEnv(env, 3)
    assert not spec.discrete and spec.shape == (1,)

    def wide_policy(obs):  # std 5 on a [-2, 2] box: most samples fall outside the bounds
        return DiagGaussian(jnp.zeros((obs.shape[0], 1)), jnp.log(jnp.array([5.0])))

    runner = rollout.reset(env, params, jax.random.key(0))
    _, batch = jax.jit(lambda r: rollout.collect(wide_policy, env, params, spec, r, 250))(runner)
    obs, next_obs = np.asarray(batch.obs), np.asarray(batch.next_obs)
    terminated, truncated = np.asarray(batch.terminated), np.asarray(batch.truncated)

    assert not terminated.any()
    assert truncated[199].all() and truncated.sum() == 3  # time limit at step 200
    # s'_t is the next observation except where the episode ended and the env reset
    np.testing.assert_array_equal(next_obs[:199], obs[1:200])
    np.testing.assert_array_equal(next_obs[200:249], obs[201:250])
    assert not np.allclose(next_obs[199], obs[200])
    # the stored action is the policy's sample, not the clipped one
    assert np.abs(np.asarray(batch.action)).max() > 2.0
    np.testing.assert_allclose(np.asarray(rollout.env_action(batch.action, spec)).max(), 2.0)
    # the episode that finished at t=199 has length 200
    np.testing.assert_array_equal(np.asarray(batch.episode_length)[199], 200)
    assert np.asarray(batch.episode_finished).sum() == 3


def test_action_spec_reads_the_space_from_the_environment():
    cartpole = envs.action_spec(*envs.make("CartPole-v1"))
    assert cartpole.discrete and cartpole.num_actions == 2
    pendulum = envs.action_spec(*envs.make("Pendulum-v1"))
    assert not pendulum.discrete and float(pendulum.low[0]) == -2.0 and float(pendulum.high[0]) == 2.0


def test_unsupported_action_space_is_refused():
    class DictActions:
        name = "Weird-v0"

        def action_space(self, params):
            from gymnax.environments import spaces

            return spaces.Dict({"a": spaces.Discrete(2)})

    try:
        envs.action_spec(DictActions(), None)
    except ValueError as error:
        assert str(error).startswith("env_id:") and "Discrete" in str(error)
    else:
        raise AssertionError("a Dict action space must be refused")


def test_make_rejects_unknown_ids_and_overrides():
    import pytest

    with pytest.raises(ValueError, match="Did you mean: CartPole-v1"):
        envs.make("Cartpole-v1")
    with pytest.raises(ValueError, match="^overrides: .*max_stepz"):
        envs.make("CartPole-v1", max_stepz=3)
    _, params = envs.make("CartPole-v1", max_steps_in_episode=17)
    assert params.max_steps_in_episode == 17
