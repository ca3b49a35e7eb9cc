"""Each wrapper against an independent numpy computation on the same raw stream."""

import jax
import jax.numpy as jnp
import numpy as np

from purejaxvpg import envs


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


def pooled(seen, prior_count):
    """Mean and variance, from the definition, of `prior_count` pseudo-observations of mean 0
    and variance 1 pooled with the rows of `seen` (float64)."""
    x = np.asarray(seen, np.float64)
    total = prior_count + x.shape[0]
    mean = x.sum(0) / total
    # sum of squared deviations from the pooled mean: prior_count * (1 + (0 - mean)^2) + data's
    m2 = prior_count * (1.0 + mean**2) + ((x - mean) ** 2).sum(0)
    return mean, m2 / total


def test_normalize_observation_matches_numpy_running_statistics():
    env, params = envs.make("CartPole-v1")
    raw = envs.VecEnv(env, 8)
    norm = envs.NormalizeObservation(envs.VecEnv(env, 8))
    key = jax.random.key(2)
    raw_obs0, _, (raw_obs, _, _, _, raw_info, _) = random_rollout(raw, params, 40, key, 8)
    obs0, state, (obs, _, _, _, info, _) = random_rollout(norm, params, 40, key, 8)
    seen = np.concatenate([np.asarray(raw_obs0)[None], np.asarray(raw_obs)]).reshape(-1, 4)
    mean, var = pooled(seen, 1e-4)
    np.testing.assert_allclose(np.asarray(state.stats.mean), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(state.stats.var), var, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(float(state.stats.count), seen.shape[0] + 1e-4, rtol=1e-7)
    # the last step is normalised with the statistics after it
    expected = (np.asarray(raw_obs)[-1] - mean) / np.sqrt(var + 1e-8)
    np.testing.assert_allclose(np.asarray(obs)[-1], np.clip(expected, -10, 10), rtol=1e-3, atol=1e-3)
    # and so is the final observation (the critic bootstraps from it at truncations)
    final = (np.asarray(raw_info["final_observation"])[-1] - mean) / np.sqrt(var + 1e-8)
    np.testing.assert_allclose(np.asarray(info["final_observation"])[-1], np.clip(final, -10, 10),
                               rtol=1e-3, atol=1e-3)


def test_running_statistics_keep_small_variances_under_large_offsets():
    """offset 100, std 0.01: E[x^2] - E[x]^2 in float32 cancels to 0 (x^2 ~ 1e4, its float32
    spacing ~ 1e-3 > the variance 1e-4); the running statistics must not."""
    rng = np.random.default_rng(0)
    offsets, stds = np.array([100.0, -1000.0, 0.5]), np.array([0.01, 0.1, 1.0])
    batches = (offsets + stds * rng.standard_normal((20, 64, 3))).astype(np.float32)
    update = jax.jit(envs.RunningMeanStd.update)
    data_only = envs.RunningMeanStd(jnp.zeros(3), jnp.ones(3), jnp.float32(0.0))  # no prior
    with_prior = envs.RunningMeanStd.prior((3,))
    for batch in batches:
        data_only, with_prior = update(data_only, batch), update(with_prior, batch)
    seen = batches.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(np.asarray(data_only.mean), seen.mean(0), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(data_only.var), seen.var(0), rtol=1e-2)
    mean, var = pooled(seen, 1e-4)
    np.testing.assert_allclose(np.asarray(with_prior.mean), mean, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(with_prior.var), var, rtol=1e-2)


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


def scale_reward_reference(raw_reward, done, gamma, prior_count=1.0):
    """r_t / sqrt(Var[G] + 1e-8) from the definition: G = gamma * G + r per environment,
    restarted at 0 after every episode end; Var over the prior and every G so far."""
    num_steps, num_envs = raw_reward.shape
    returns, seen, expected = np.zeros(num_envs), [], []
    for t in range(num_steps):
        returns = gamma * returns + raw_reward[t]
        seen.extend(returns)
        expected.append(raw_reward[t] / np.sqrt(pooled(seen, prior_count)[1] + 1e-8))
        returns = np.where(done[t], 0.0, returns)
    return np.array(expected)


def test_scale_reward_matches_numpy_discounted_return_std_across_episode_ends():
    """Random CartPole episodes end at different steps in different environments
    (terminated, or truncated at 20 steps); each restarts its discounted return."""
    env, params = envs.make("CartPole-v1", max_steps_in_episode=20)
    gamma, num_envs, num_steps = 0.9, 8, 50
    raw = envs.VecEnv(env, num_envs)
    scaled = envs.ScaleReward(envs.VecEnv(env, num_envs), gamma)
    key = jax.random.key(6)
    _, _, (_, raw_reward, term, trunc, _, _) = random_rollout(raw, params, num_steps, key, num_envs)
    _, state, (_, reward, *_) = random_rollout(scaled, params, num_steps, key, num_envs)
    done = np.asarray(term | trunc)
    ends = [np.flatnonzero(np.concatenate([[True], done[:, e]])) for e in range(num_envs)]
    lengths = set(np.concatenate([np.diff(e) for e in ends]))
    assert np.asarray(term).any() and np.asarray(trunc).any() and len(lengths) > 3, lengths
    expected = scale_reward_reference(np.asarray(raw_reward, np.float64), done, gamma)
    np.testing.assert_allclose(np.asarray(reward), expected, rtol=1e-4)


def test_scale_reward_keeps_the_first_reward_of_order_one():
    """One CartPole environment: the first discounted return is a single value, 1. With no
    prior its variance is 0 and the reward becomes 1 / sqrt(1e-8) = 1e4; with one
    pseudo-return of variance 1 it is 1 / sqrt(0.75)."""
    env, params = envs.make("CartPole-v1")
    scaled = envs.ScaleReward(envs.VecEnv(env, 1), 0.99)
    _, state = scaled.reset(jax.random.key(0), params)
    reward = float(scaled.step(jax.random.key(1), state, jnp.zeros(1, jnp.int32), params)[2][0])
    expected = scale_reward_reference(np.ones((1, 1)), np.zeros((1, 1), bool), 0.99)[0, 0]
    np.testing.assert_allclose(expected, 1 / np.sqrt(0.75 + 1e-8))  # the reference's own check
    np.testing.assert_allclose(reward, expected, rtol=1e-5)


def test_scale_reward_discount_is_a_state_leaf():
    """The trainer sets each run's gamma in the state (a sweep batches it); steps use it."""
    env, params = envs.make("Chain-known")  # every step pays 1
    stack = envs.ScaleReward(envs.VecEnv(envs.EpisodeStatistics(env), 1), 0.99)
    _, state = stack.reset(jax.random.key(0), params)
    assert float(state.gamma) == np.float32(0.99)
    state = envs.set_return_discount(state, 0.5)
    step = jax.jit(lambda state, key: stack.step(key, state, jnp.zeros(1, jnp.int32), params)[1])
    state = step(step(state, jax.random.key(1)), jax.random.key(2))
    assert float(state.discounted_return[0]) == 1.5  # 0.5 * 1 + 1
    _, plain = envs.VecEnv(envs.EpisodeStatistics(env), 1).reset(jax.random.key(0), params)
    assert envs.set_return_discount(plain, 0.5) is plain  # no reward scaling: nothing to set


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
