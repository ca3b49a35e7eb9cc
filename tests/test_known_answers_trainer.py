"""Promises of the trainer's wiring, each against a known answer through `pjv.train`:
truncation is bootstrapped, evaluation uses the trained observation statistics, and reward
scaling discounts with each swept gamma."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

import purejaxvpg as pjv
from purejaxvpg import envs
from purejaxvpg.algo.networks import Critic


def test_time_limit_is_bootstrapped_not_treated_as_termination():
    """TimeLimit-known pays 1 per step forever from one observation, cut at H = 16 steps.

    Bootstrapping V(final observation) at the cut gives V = 1 / (1 - gamma) = 10 (gamma 0.9).
    A trainer that treats the cut as termination regresses V on the finite-horizon values
    (1 - gamma^(H - t)) / (1 - gamma) of the steps t = 0 .. 15 that one rollout of 16 steps
    visits (the environments are in step, each rollout one whole episode); with lambda = 1
    their mean is (1 - gamma (1 - gamma^H) / (H (1 - gamma))) / (1 - gamma) = 5.42.
    Observations are normalised, so the bootstrap also needs the final observation
    normalised like the others.
    """
    gamma, horizon = 0.9, envs.TimeLimitTask().default_params.max_steps_in_episode
    config = pjv.Config(
        env_id="TimeLimit-known", gamma=gamma, gae_lambda=1.0, num_envs=2, num_steps=horizon,
        total_steps=2 * horizon * 60, value_lr=1e-2, normalize_obs=True,
    )
    result = pjv.train(config, num_seeds=2)
    truncation_as_death = np.mean((1 - gamma ** (horizon - np.arange(horizon))) / (1 - gamma))
    assert abs(truncation_as_death - 5.417) < 1e-3  # far outside the tolerance below
    critic = Critic(config.hidden_sizes, config.activation)
    stats = envs.observation_stats(result.final_state.runner.env_state)
    for seed in range(2):
        params, mean, var = jax.tree.map(lambda x: x[seed], (result.params["critic"], stats.mean, stats.var))
        obs = jnp.clip((jnp.ones((1, 1)) - mean) / jnp.sqrt(var + 1e-8), -10, 10)
        value = float(critic.apply(params, obs)[0])
        assert abs(value - 1 / (1 - gamma)) < 0.5, (value, truncation_as_death)
    np.testing.assert_array_equal(result.metrics["episode_length"][:, -1], horizon)  # all truncated


def test_greedy_evaluation_uses_the_trained_observation_statistics():
    """ContextualBandit-known shows offset 100 -/+ 1 and pays 1 for naming the context.

    Normalised with the trained statistics, the greedy policy earns the optimum, 1, in every
    evaluation episode. Evaluated with default statistics (mean 0, variance 1, clipped at
    10) both contexts look the same, and greedy earns about 0.5 (0.5 +- 0.06 over 64
    episodes).
    """
    updates = 40
    config = pjv.Config(
        env_id="ContextualBandit-known", num_envs=16, num_steps=4, total_steps=16 * 4 * updates,
        policy_lr=1e-2, normalize_obs=True, eval_every=updates, eval_episodes=64,
    )
    result = pjv.train(config, num_seeds=2)
    np.testing.assert_array_equal(result.metrics["episode_return"][:, -1], 1.0)  # it learned
    np.testing.assert_array_equal(result.eval_metrics["eval_return_greedy"][:, -1], 1.0)


def test_reward_scaling_discounts_with_each_swept_gamma():
    """With scale_rewards, a sweep over gamma equals separate runs of those configs: the
    scaled rewards depend on the discount of the running return, which must be the run's."""
    base = pjv.Config(env_id="CartPole-v1", total_steps=4 * 16 * 3, num_envs=4, num_steps=16,
                      scale_rewards=True, gamma=0.99)
    gammas = [0.99, 0.9]
    columns = {name: [getattr(base, name)] * 2 for name in ("policy_lr", "value_lr", "gae_lambda",
                                                            "ent_coef", "value_iters")}
    keys = jnp.tile(pjv.seed_keys(3, 1), 2)  # the same key for both settings
    swept = pjv.train(base, keys=keys, hparams=pjv.HyperParams(gamma=gammas, **columns))
    alone = pjv.train(dataclasses.replace(base, gamma=0.9), num_seeds=1, seed=3)
    for name in pjv.METRIC_NAMES:
        np.testing.assert_allclose(swept.metrics[name][1:], alone.metrics[name],
                                   rtol=1e-4, atol=1e-4, err_msg=name)
    # the two settings differ (else the comparison above could not catch anything)
    assert not np.allclose(swept.metrics["value_loss"][0], swept.metrics["value_loss"][1])
