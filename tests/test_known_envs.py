"""The trainer against environments whose answer is known in closed form."""

import jax
import jax.numpy as jnp
import numpy as np

import purejaxvpg as pjv
from purejaxvpg import envs
from purejaxvpg.algo.networks import Actor, Critic


def _actor(config, action_size, discrete):
    return Actor(config.hidden_sizes, action_size, discrete, config.activation, config.log_std_init)


def test_chain_value_function_matches_closed_form():
    gamma = 0.9
    config = pjv.Config(env_id="Chain-known", gamma=gamma, num_envs=8, num_steps=16, total_steps=8 * 16 * 150)
    result = pjv.train(config, num_seeds=2)
    critic = Critic(config.hidden_sizes, config.activation)
    states = jnp.eye(5)
    expected = envs.Chain().values(gamma)  # [4.0951, 3.439, 2.71, 1.9, 1.0]
    for seed in range(2):
        params = jax.tree.map(lambda x: x[seed], result.params["critic"])
        learned = np.asarray(critic.apply(params, states))
        np.testing.assert_allclose(learned, expected, atol=0.1)
    np.testing.assert_allclose(result.metrics["episode_return"][:, -1], 5.0)  # every episode pays 5


def test_bandit_policy_converges_to_the_best_arm():
    config = pjv.Config(env_id="Bandit-known", num_envs=8, num_steps=16, total_steps=8 * 16 * 150)
    result = pjv.train(config, num_seeds=4)
    actor = _actor(config, 4, discrete=True)
    for seed in range(4):
        params = jax.tree.map(lambda x: x[seed], result.params["actor"])
        probs = jax.nn.softmax(actor.apply(params, jnp.ones((1, 1))).logits[0])
        assert int(jnp.argmax(probs)) == 2 and float(probs[2]) > 0.9, probs
    late = result.metrics["episode_return"][:, -10:].mean()
    assert late > envs.MultiArmedBandit.optimal_return - 0.05, late


def test_continuous_policy_mean_converges_to_the_target():
    """Mean -> 0.7; the return matches the closed form E[r] = -(mu - 0.7)^2 - sigma^2."""
    config = pjv.Config(env_id="ContinuousTarget-known", num_envs=8, num_steps=16, total_steps=8 * 16 * 300)
    result = pjv.train(config, num_seeds=4)
    actor = _actor(config, 1, discrete=False)
    final_returns = result.metrics["episode_return"][:, -1]
    for seed in range(4):
        params = jax.tree.map(lambda x: x[seed], result.params["actor"])
        dist = actor.apply(params, jnp.ones((1, 1)))
        mu, sigma = float(dist.mean[0, 0]), float(jnp.exp(dist.log_std[0]))
        assert abs(mu - 0.7) < 0.1, mu
        assert sigma < np.exp(config.log_std_init)  # it got surer
        expected = -((mu - 0.7) ** 2) - sigma**2  # (clipping to [-2, 2] is negligible here)
        assert abs(final_returns[seed] - expected) < 0.15, (final_returns[seed], expected)
    # a random initial policy (mu ~ 0, sigma ~ 0.61) earns about -0.86
    assert result.metrics["episode_return"][:, -10:].mean() > -0.4
