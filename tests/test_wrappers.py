"""Each wrapper against an independent numpy computation on the same raw stream."""

import jax
import jax.numpy as jnp
import numpy as np

import envs


def random_rollout(env, params, num_steps, key, num_envs):
    """Random actions through a VecEnv stack; returns per-step outputs stacked on time."""
    space = env.action_space(params)
    key, key_reset = jax.random.split(key)
    obs0, state = env.reset(key_reset, params)

    def step(carry, key):
        state = carry
        key_act, key_env = jax.random.split(key)
        action = jax.vmap(space.sample)(jax.random.split(key_act, num_envs))
        obs, state, reward, term, trunc, info = env.step(key_env, state, action, params)
        return state, (obs, reward, term, trunc, info, action)

    state, out = jax.jit(lambda s, k: jax.lax.scan(step, s, k))(state, jax.random.split(key, num_steps))
    return obs0, state, out


def test_episode_statistics_never_mix_episodes():
    env, params = envs.make("Chain-known")  # every episode: 5 steps, return 5
    vec = envs.VecEnv(envs.EpisodeStatistics(env), 3)
    _, _, (obs, reward, term, trunc, info, _) = random_rollout(vec, params, 23, jax.random.key(0), 3)
    finished = np.asarray(info["episode_finished"])
    np.testing.assert_array_equal(finished[:, 0], (np.arange(1, 24) % 5) == 0)
    np.testing.assert_array_equal(np.asarray(info["episode_return"])[finished], 5.0)
    np.testing.assert_array_equal(np.asarray(info["episode_length"])[finished], 5)


def test_episode_statistics_count_truncation_as_an_episode_end():
    env, params = envs.make("CartPole-v1", max_steps_in_episode=7)
    vec = envs.VecEnv(envs.EpisodeStatistics(env), 16)
    _, _, (_, reward, term, trunc, info, _) = random_rollout(vec, params, 50, jax.random.key(1), 16)
    term, trunc, finished = (np.asarray(x) for x in (term, trunc, info["episode_finished"]))
    assert trunc.any()
    np.testing.assert_array_equal(finished, term | trunc)
    lengths = np.asarray(info["episode_length"])[finished]
    assert lengths.max() == 7 and lengths.min() >= 1
    # reference: sum the rewards between episode ends, per env, in numpy
    rewards = np.asarray(reward)
    for e in range(16):
        running = 0.0
        for t in range(50):
            running += rewards[t, e]
            if finished[t, e]:
                assert np.isclose(np.asarray(info["episode_return"])[t, e], running)
                running = 0.0


def test_normalize_observation_matches_numpy_running_statistics():
    env, params = envs.make("CartPole-v1")
    raw = envs.VecEnv(env, 8)
    norm = envs.NormalizeObservation(envs.VecEnv(env, 8))
    key = jax.random.key(2)
    raw_obs0, _, (raw_obs, *_) = random_rollout(raw, params, 40, key, 8)
    obs0, state, (obs, _, _, _, info, _) = random_rollout(norm, params, 40, key, 8)
    seen = np.concatenate([np.asarray(raw_obs0)[None], np.asarray(raw_obs)]).reshape(-1, 4)
    np.testing.assert_allclose(np.asarray(state.stats.mean), seen.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(state.stats.var), seen.var(0), rtol=1e-3, atol=1e-6)
    assert float(state.stats.count) == seen.shape[0]
    # the last step is normalised with the statistics after it
    expected = (np.asarray(raw_obs)[-1] - seen.mean(0)) / np.sqrt(seen.var(0) + 1e-8)
    np.testing.assert_allclose(np.asarray(obs)[-1], np.clip(expected, -10, 10), rtol=1e-3, atol=1e-3)
    assert np.abs(np.asarray(info["final_observation"])).max() <= 10.0


def test_normalize_observation_frozen_keeps_given_statistics_and_is_per_seed():
    env, params = envs.make("CartPole-v1")
    given = envs.RunningMeanStd(jnp.full((4,), 0.5), jnp.full((4,), 4.0), jnp.float32(100.0))
    frozen = envs.NormalizeObservation(envs.VecEnv(env, 4), frozen=True)
    raw_obs, _ = envs.VecEnv(env, 4).reset(jax.random.key(3), params)
    obs, state = frozen.reset(jax.random.key(3), params, stats=given)
    np.testing.assert_allclose(np.asarray(obs), (np.asarray(raw_obs) - 0.5) / 2.0, rtol=1e-5)
    _, state, *_ = frozen.step(jax.random.key(4), state, jnp.zeros(4, jnp.int32), params)
    assert float(state.stats.count) == 100.0
    # under vmap over seeds every seed has its own statistics
    learning = envs.NormalizeObservation(envs.VecEnv(env, 4))
    _, states = jax.vmap(learning.reset, in_axes=(0, None))(jax.random.split(jax.random.key(5), 3), params)
    assert states.stats.mean.shape == (3, 4)
    assert not np.allclose(states.stats.mean[0], states.stats.mean[1])


def test_scale_reward_matches_numpy_discounted_return_std():
    env, params = envs.make("Pendulum-v1")
    gamma = 0.9
    raw = envs.VecEnv(env, 4)
    scaled = envs.ScaleReward(envs.VecEnv(env, 4), gamma)
    key = jax.random.key(6)
    _, _, (_, raw_reward, term, trunc, _, _) = random_rollout(raw, params, 30, key, 4)
    _, state, (_, reward, *_) = random_rollout(scaled, params, 30, key, 4)
    raw_reward = np.asarray(raw_reward, np.float64)
    returns, seen, expected = np.zeros(4), [], []
    for t in range(30):
        returns = gamma * returns + raw_reward[t]
        seen.extend(returns)
        expected.append(raw_reward[t] / np.sqrt(np.var(seen) + 1e-8))
    np.testing.assert_allclose(np.asarray(reward), np.array(expected), rtol=1e-3)


def test_rescale_action_maps_unit_box_to_bounds():
    env, params = envs.make("ContinuousTarget-known")  # reward -(a - 0.7)^2, bounds [-2, 2]
    wrapped = envs.RescaleAction(env)
    space = wrapped.action_space(params)
    assert float(space.low) == -1.0 and float(space.high) == 1.0
    _, state = wrapped.reset(jax.random.key(0), params)
    for agent_action, env_action in [(-1.0, -2.0), (0.0, 0.0), (1.0, 2.0), (5.0, 2.0), (0.25, 0.5)]:
        reward = wrapped.step(jax.random.key(1), state, jnp.array([agent_action]), params)[2]
        np.testing.assert_allclose(float(reward), -((env_action - 0.7) ** 2), rtol=1e-6)


def test_flatten_observation():
    env, params = envs.make("Breakout-MinAtar")
    flat = envs.FlattenObservation(env)
    assert flat.observation_space(params).shape == (400,)
    raw_obs, _ = env.reset(jax.random.key(0), params)
    obs, state = flat.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(raw_obs).reshape(-1))
    out = flat.step(jax.random.key(1), state, 0, params)
    assert out[0].shape == (400,) and out[5]["final_observation"].shape == (400,)
