"""Evaluation episodes (greedy = the distribution's mode, stochastic = a sample) against
closed-form returns of policies set by hand, and inside training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxvpg as pjv
from purejaxvpg import envs
from purejaxvpg.algo.envstack import build
from purejaxvpg.algo.evaluate import make_evaluate
from purejaxvpg.algo.program import Agent


def _constant_policy(config, bias, log_std=None):
    """Actor parameters whose output is `bias` for every observation (last layer zeroed)."""
    s = Agent.build(config)
    params = s.actor.init(jax.random.key(0), jnp.zeros((1, *s.stack.obs_shape)))
    mlp = params["params"]["MLP_0"]
    last = sorted(mlp, key=lambda name: int(name.split("_")[1]))[-1]
    mlp[last] = {"kernel": jnp.zeros_like(mlp[last]["kernel"]), "bias": jnp.asarray(bias, jnp.float32)}
    if log_std is not None:
        params["params"]["log_std"] = jnp.full_like(params["params"]["log_std"], log_std)
    return s, params


def test_gaussian_target_greedy_and_stochastic_returns_match_closed_form():
    # ContinuousTarget pays -(a - 0.7)^2. Greedy plays the mean mu: -(mu - 0.7)^2 exactly.
    # Stochastic a ~ N(mu, sigma^2): E = -(mu - 0.7)^2 - sigma^2,
    # Var = 4 d^2 sigma^2 + 2 sigma^4 with d = mu - 0.7.
    mu, sigma, episodes = 0.2, 0.3, 4096
    config = pjv.Config(env_id="ContinuousTarget-known")
    s, params = _constant_policy(config, [mu], np.log(sigma))
    out = make_evaluate(config, s.actor, s.stack_of(episodes))(params, None, jax.random.key(1))
    d = mu - 0.7
    np.testing.assert_allclose(out["eval_return_greedy"], -(d**2), rtol=1e-5)
    std_error = np.sqrt((4 * d**2 * sigma**2 + 2 * sigma**4) / episodes)
    assert abs(float(out["eval_return_stochastic"]) - (-(d**2) - sigma**2)) < 4 * std_error
    assert float(out["eval_length_greedy"]) == 1.0


def test_bandit_greedy_pulls_the_most_likely_arm_and_stochastic_averages_arms():
    logits = np.array([2.0, 0.0, 1.0, -1.0])  # mode: arm 0 (mean 0.2), not the best arm
    means = np.array([0.2, 0.5, 0.9, 0.4])
    episodes = 4096
    config = pjv.Config(env_id="Bandit-known")
    s, params = _constant_policy(config, logits)
    out = make_evaluate(config, s.actor, s.stack_of(episodes))(params, None, jax.random.key(2))
    assert abs(float(out["eval_return_greedy"]) - 0.2) < 4 * 0.1 / np.sqrt(episodes)
    p = np.exp(logits) / np.exp(logits).sum()
    expected = p @ means
    std = np.sqrt(p @ (means - expected) ** 2 + 0.1**2)
    assert abs(float(out["eval_return_stochastic"]) - expected) < 4 * std / np.sqrt(episodes)


def test_evaluation_during_training_has_shape_seeds_by_evals_and_leaves_training_unchanged(tiny_config):
    with_eval = pjv.Config(**{**tiny_config.__dict__, "eval_every": 2, "eval_episodes": 3})
    plain = pjv.train(tiny_config, num_seeds=2, seed=4)
    result = pjv.train(with_eval, num_seeds=2, seed=4)
    assert with_eval.num_evals == 3
    for name, values in result.eval_metrics.items():
        assert values.shape == (2, 3), name
    np.testing.assert_array_equal(result.eval_env_steps, [2, 4, 6] * np.array(with_eval.batch_size))
    # CartPole pays 1 per step: an episode's return is its length, at most 500
    for mode in ("greedy", "stochastic"):
        np.testing.assert_allclose(
            result.eval_metrics[f"eval_return_{mode}"], result.eval_metrics[f"eval_length_{mode}"]
        )
        assert (result.eval_metrics[f"eval_length_{mode}"] >= 1).all()
        assert (result.eval_metrics[f"eval_length_{mode}"] <= 500).all()
    # evaluation has its own key: training is the same with or without it
    for name in pjv.METRIC_NAMES:
        np.testing.assert_allclose(result.metrics[name], plain.metrics[name], rtol=1e-5, atol=1e-6)


def test_evaluation_uses_the_trained_observation_statistics():
    config = pjv.Config(env_id="Pendulum-v1", normalize_obs=True, total_steps=4 * 32 * 2,
                        num_envs=4, num_steps=32)
    result = pjv.train(config, num_seeds=1)
    stats = envs.observation_stats(jax.tree.map(lambda x: x[0], result.final_state.runner.env_state))
    assert stats is not None and float(stats.count) > 1
    stack = build(config, 2, evaluation=True)
    obs, state = stack.env.reset(jax.random.key(0), stack.env_params, stats)
    # frozen: stepping never changes the statistics it was given
    _, state, *_ = stack.env.step(jax.random.key(1), state, jnp.zeros((2, 1)), stack.env_params)
    np.testing.assert_array_equal(envs.observation_stats(state).mean, stats.mean)


@pytest.mark.parametrize("field,value", [("eval_every", -1), ("eval_episodes", 0)])
def test_bad_eval_settings_are_clear_errors(field, value):
    with pytest.raises(ValueError, match=field):
        pjv.Config(**{field: value}).validate()


def test_an_evaluation_episode_is_cut_at_eval_max_steps_and_counted_with_its_return_so_far():
    # TimeLimit-known pays 1 per step and never terminates: an episode lasts exactly its
    # time limit H, so its return is H; cut at M < H steps, it is M.
    H, M = 40, 7
    config = pjv.Config(env_id="TimeLimit-known", env_params=(("max_steps_in_episode", H),))
    s, params = _constant_policy(config, [0.0, 0.0])
    full = make_evaluate(config, s.actor, s.stack_of(3))(params, None, jax.random.key(0))
    assert float(full["eval_return_greedy"]) == H and float(full["eval_length_stochastic"]) == H
    cut = pjv.Config(**{**config.__dict__, "eval_max_steps": M})
    out = make_evaluate(cut, s.actor, s.stack_of(3))(params, None, jax.random.key(0))
    assert float(out["eval_return_greedy"]) == M and float(out["eval_length_greedy"]) == M
    assert float(out["eval_return_stochastic"]) == M


def test_a_huge_time_limit_is_capped_so_evaluation_ends():
    from purejaxvpg.algo.evaluate import eval_steps
    from purejaxvpg.config import EVAL_STEPS_CAP

    huge = pjv.Config(env_id="CartPole-v1", env_params=(("max_steps_in_episode", 10**9),))
    assert eval_steps(huge, build(huge, 1)) == EVAL_STEPS_CAP == 100_000
    default = pjv.Config(env_id="CartPole-v1")
    assert eval_steps(default, build(default, 1)) == 500  # every shipped limit is below the cap
    assert eval_steps(pjv.Config(**{**huge.__dict__, "eval_max_steps": 9}), build(huge, 1)) == 9
    # the whole evaluation of a 10**9 limit runs: 100,000 steps (CartPole's episodes end long before)
    s, params = _constant_policy(huge, [0.0, 0.0])
    out = jax.jit(make_evaluate(huge, s.actor, s.stack_of(2)))(params, None, jax.random.key(0))
    assert 5 <= float(out["eval_length_greedy"]) < 200


@pytest.mark.parametrize("value", [-1, 100_001, 2.5, True])
def test_eval_max_steps_out_of_range_is_refused_naming_the_field(value):
    with pytest.raises(ValueError, match=r"eval_max_steps: must be an integer >= 0 and <= 100000"):
        pjv.Config(eval_max_steps=value).validate()
