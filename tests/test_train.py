"""The one-call trainer: shapes, finiteness, seed independence, determinism, no host trips."""

import dataclasses

import chex
import jax
import numpy as np
import pytest

import purejaxvpg as pjv


def test_metrics_are_per_seed_per_update(tiny_config, tiny_result):
    updates = tiny_config.num_updates
    assert set(tiny_result.metrics) == set(pjv.METRIC_NAMES)
    for name, values in tiny_result.metrics.items():
        assert values.shape == (8, updates), name
        assert np.all(np.isfinite(values)), name
    np.testing.assert_array_equal(
        tiny_result.metrics["env_steps"][0], tiny_config.batch_size * np.arange(1, updates + 1)
    )
    # a random CartPole policy ends episodes of ~20 steps: every seed finishes some in its
    # 6 updates of 32 steps x 4 envs (one update may by chance finish none)
    assert np.all(tiny_result.metrics["episodes_finished"].sum(axis=1) > 0)
    lengths = tiny_result.metrics["episode_length"]
    assert np.all(lengths >= tiny_result.metrics["episode_length_min"])
    assert np.all(lengths <= tiny_result.metrics["episode_length_max"])
    # CartPole pays 1 per step, so an episode's return equals its length
    np.testing.assert_allclose(tiny_result.metrics["episode_return"], lengths, rtol=1e-5)
    assert np.all(tiny_result.metrics["approx_kl"] >= 0)


def test_params_have_a_leading_seed_axis(tiny_result):
    for leaf in jax.tree.leaves(tiny_result.params):
        assert leaf.shape[0] == 8


def test_seed_alone_equals_seed_inside_a_batch(tiny_config, tiny_result):
    keys = pjv.seed_keys(0, 8)
    alone = pjv.train(tiny_config, keys=keys[5:6])
    chex.assert_trees_all_close(jax.tree.map(lambda v: v[0], alone.metrics),
                                jax.tree.map(lambda v: v[5], tiny_result.metrics), rtol=1e-5, atol=1e-6)


def _first(tree, n):
    return jax.tree.map(lambda v: v[:n], tree)


def test_seed_results_do_not_depend_on_its_batch_bit_for_bit(tiny_config, tiny_result):
    """Discrete actions: seeds 0-1 trained as a pair give the very numbers they give among
    8 (CPU, bit for bit): every update's metrics and the final parameters. (Reductions over
    a seed's samples once summed in an order set by the batch size.)"""
    pair = pjv.train(tiny_config, keys=pjv.seed_keys(0, 8)[:2])
    chex.assert_trees_all_equal(pair.metrics, _first(tiny_result.metrics, 2))
    chex.assert_trees_all_equal(pair.params, _first(tiny_result.params, 2))


def test_continuous_seed_results_and_evaluations_do_not_depend_on_its_batch_bit_for_bit():
    """The same with a Gaussian policy and evaluations (eval_every): a pair vs a triple."""
    config = pjv.Config(env_id="Pendulum-v1", num_envs=4, num_steps=50, total_steps=4 * 50 * 4,
                        eval_every=2, eval_episodes=1)
    keys = pjv.seed_keys(0, 3)
    pair, triple = pjv.train(config, keys=keys[:2]), pjv.train(config, keys=keys)
    assert pair.eval_metrics["eval_return_greedy"].shape == (2, 2)
    chex.assert_trees_all_equal(pair.metrics, _first(triple.metrics, 2))
    chex.assert_trees_all_equal(pair.eval_metrics, _first(triple.eval_metrics, 2))
    chex.assert_trees_all_equal(pair.params, _first(triple.params, 2))


def test_initial_state_of_a_seed_alone_equals_it_inside_a_batch(tiny_config):
    """Initial weights (orthogonal init) and environments, bit for bit, one seed vs three."""
    from purejaxvpg.algo import program

    agent = program.Agent.build(tiny_config)
    init = jax.jit(jax.vmap(lambda key: program.init(agent, program.HyperParams.from_config(tiny_config), key)))
    keys = pjv.seed_keys(0, 3)
    data = lambda tree: jax.tree.map(  # noqa: E731
        lambda v: jax.random.key_data(v) if jax.dtypes.issubdtype(v.dtype, jax.dtypes.prng_key) else v, tree)
    chex.assert_trees_all_equal(data(init(keys[:1])), _first(data(init(keys)), 1))


def test_same_key_same_result(tiny_config, tiny_result):
    again = pjv.train(tiny_config, num_seeds=8, seed=0)
    chex.assert_trees_all_equal(again.metrics, tiny_result.metrics)
    other = pjv.train(tiny_config, num_seeds=8, seed=1)
    assert not np.array_equal(other.metrics["policy_loss"], tiny_result.metrics["policy_loss"])


def test_make_train_is_one_pure_function(tiny_config):
    """make_train(config) jits and vmaps as documented, with no host callbacks inside."""
    train = pjv.make_train(tiny_config)
    keys = pjv.seed_keys(0, 2)
    text = jax.jit(jax.vmap(train)).lower(keys).as_text()
    assert "callback" not in text and "host" not in text.lower().replace("host_", "")
    final_state, metrics, evals = jax.jit(jax.vmap(train))(keys)
    assert evals.eval_return_greedy.shape == (2, 0)  # no eval_every: no evaluations
    assert metrics["policy_loss"].shape == (2, tiny_config.num_updates)
    assert int(final_state.updates_done[0]) == tiny_config.num_updates


def test_continuous_actions_run_and_learned_log_std_exists():
    config = pjv.Config(env_id="Pendulum-v1", total_steps=4 * 100 * 3, num_envs=4, num_steps=100)
    result = pjv.train(config, num_seeds=2)
    assert "log_std" in result.params["actor"]["params"]
    for name, values in result.metrics.items():
        assert np.all(np.isfinite(values)), name
    # Pendulum episodes are cut at 200 steps: in 300 steps each of the 4 envs finishes one,
    # during the second update (steps 100-199).
    np.testing.assert_array_equal(result.metrics["episodes_finished"], [[0, 4, 0]] * 2)
    np.testing.assert_array_equal(result.metrics["episode_length"][:, 1:], 200.0)
    assert np.all(result.metrics["episode_return"][:, 1:] < 0)


def test_observation_normalisation_and_reward_scaling_run_per_seed():
    """With both batch wrappers on, returns are still the environment's own and the
    normalisation statistics live in each seed's final state."""
    config = pjv.Config(
        env_id="Pendulum-v1", total_steps=4 * 100 * 3, num_envs=4, num_steps=100,
        normalize_obs=True, scale_rewards=True, rescale_actions=True,
    )
    result = pjv.train(config, num_seeds=2)
    for name, values in result.metrics.items():
        assert np.all(np.isfinite(values)), name
    # the 200-step episode returns are unscaled Pendulum returns (about -1200 at random)
    assert np.all(result.metrics["episode_return"][:, 1] < -500)
    env_state = result.final_state.runner.env_state  # ScaleReward -> NormalizeObservation -> ...
    stats = env_state.env_state.stats
    assert stats.mean.shape == (2, 3)
    # reset + 300 steps of 4 envs, after the prior's 1e-4 pseudo-observations
    np.testing.assert_allclose(np.asarray(stats.count), 4 * (1 + 300) + 1e-4, rtol=1e-6)


def test_loop_optimisations_do_not_change_results(tiny_config, tiny_result):
    # unrolled loops (3 does not divide the 32 rollout steps) and the associative GAE
    changes = {"scan_unroll": 3, "gae_method": "associative"}
    result = pjv.train(dataclasses.replace(tiny_config, **changes), num_seeds=8, seed=0)
    chex.assert_trees_all_close(result.metrics, tiny_result.metrics, rtol=1e-4, atol=1e-4)


def test_num_seeds_and_keys_that_disagree_are_refused(tiny_config):
    with pytest.raises(ValueError, match=r"^num_seeds: 8, but keys holds 4 keys"):
        pjv.train(tiny_config, num_seeds=8, keys=pjv.seed_keys(0, 4))


def test_train_inside_a_jax_trace_says_it_is_a_host_function(tiny_config):
    with pytest.raises(ValueError, match=r"^train: purejaxvpg.train is a host function.*make_train"):
        jax.jit(lambda x: pjv.train(tiny_config, num_seeds=2).metrics["env_steps"].sum() + x)(1.0)
    with pytest.raises(ValueError, match=r"^train: purejaxvpg.train is a host function"):
        jax.vmap(lambda k: pjv.train(tiny_config, keys=k[None]).metrics["env_steps"])(pjv.seed_keys(0, 2))


def test_a_list_is_the_tuple_it_means_in_a_config():
    config = pjv.Config(hidden_sizes=[32, 32], env_params=[["max_steps_in_episode", 50]])
    assert config.hidden_sizes == (32, 32) and config.env_params == (("max_steps_in_episode", 50),)
    assert hash(config) == hash(pjv.Config(hidden_sizes=(32, 32), env_params=(("max_steps_in_episode", 50),)))
    config.validate()

