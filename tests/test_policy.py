"""A trained seed used outside training: `result.policy(seed)` and `pjv.load_policy(run_dir)`.

References: Gymnasium's own CartPole-v1 (solved return 500), the actor's MLP and the
observation normalisation written out in numpy, and closed-form action distributions.
"""

import gymnasium
import jax
import numpy as np
import pytest

import purejaxvpg as pjv
from purejaxvpg.algo.policy import make_policy
from purejaxvpg.algo.program import Agent
from purejaxvpg.host import rundir
from purejaxvpg.tools import cli

# Pendulum with normalised observations: a few updates move the statistics off the prior
PENDULUM = pjv.Config(env_id="Pendulum-v1", normalize_obs=True, num_envs=4, num_steps=32, total_steps=4 * 128)
PENDULUM_FLAGS = ["--env-id", "Pendulum-v1", "--normalize-obs", "--num-envs", "4", "--num-steps", "32",
                  "--total-steps", "512", "--num-seeds", "2", "--log-every", "2", "--no-progress"]


@pytest.fixture(scope="module")
def solved(solved_cartpole):
    """(result, seed): a seed of the README's CartPole preset (500k steps, conftest's shared
    training) that is solved at its last update."""
    final = solved_cartpole.metrics["episode_return"][:, -1]
    assert (final == 500.0).any(), final
    return solved_cartpole, int(np.argmax(final == 500.0))


@pytest.fixture(scope="module")
def pendulum():
    return pjv.train(PENDULUM, num_seeds=2, seed=0)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("policy") / "run"
    assert cli.main(["train", *PENDULUM_FLAGS, "--out", str(out)]) == 0
    return out


def numpy_mlp(params, x, activation=np.tanh):
    """The actor's head output from its parameters: hidden Dense layers with tanh, then a
    linear one. x: [B, features]."""
    layers = params["params"]["MLP_0"]
    for i in range(len(layers)):
        dense = layers[f"Dense_{i}"]
        x = x @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])
        if i < len(layers) - 1:
            x = activation(x)
    return x


def pendulum_obs(n, seed=0):
    """[n, 3] observations in Pendulum's range: cos, sin, angular velocity in [-8, 8]."""
    theta, speed = np.random.default_rng(seed).uniform([-np.pi, -8], [np.pi, 8], (n, 2)).T
    return np.stack([np.cos(theta), np.sin(theta), speed], axis=1).astype(np.float32)


def test_greedy_cartpole_policy_solves_gymnasiums_own_cartpole(solved):
    result, seed = solved
    act = result.policy(seed)
    env = gymnasium.make("CartPole-v1")
    for episode in range(3):
        obs, _ = env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(act(obs)))
            total, done = total + reward, terminated or truncated
        assert total == 500.0, (episode, total)


def test_normalised_observations_use_the_seeds_frozen_statistics(pendulum):
    obs = np.concatenate([pendulum_obs(15), [[1.0, 0.0, 80.0]]]).astype(np.float32)  # last: clipped
    stats = pendulum.final_state.runner.env_state.stats  # NormalizeObservation, the outer wrapper
    actions = []
    for seed in range(2):
        params = jax.tree.map(lambda x: np.asarray(x)[seed], pendulum.final_state.actor_params)
        mean, var = np.asarray(stats.mean)[seed], np.asarray(stats.var)[seed]
        assert not np.allclose(mean, 0.0, atol=0.05)  # the statistics left the prior
        z = (obs - mean) / np.sqrt(var + 1e-8)
        assert np.abs(z[-1]).max() > 10.0
        z = np.clip(z, -10.0, 10.0)  # NormalizeObservation's clip
        expected = np.clip(numpy_mlp(params, z), -2.0, 2.0)  # Pendulum's box: [-2, 2]
        raw = np.clip(numpy_mlp(params, obs), -2.0, 2.0)
        act = pendulum.policy(seed)
        got = np.asarray(act(obs))
        assert got.shape == (16, 1)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        assert np.abs(got - raw).max() > 100 * 1e-5  # acting on raw observations differs
        np.testing.assert_allclose(act(obs[3]), expected[3], rtol=1e-5, atol=1e-6)  # one observation
        assert act(obs[3]).shape == (1,)
        actions.append(got)
    assert np.abs(actions[0] - actions[1]).max() > 1e-3  # each seed acts with its own parameters


def actor_params(config: pjv.Config, fill, bias=None, log_std=None):
    """Actor parameters of `config`'s shapes (nothing initialised or compiled): every array
    `fill(shape)`, then the head's bias and log_std (Gaussian) set where given."""
    agent = Agent.build(config)
    obs = np.zeros((1, *agent.stack.obs_shape), np.float32)
    shapes = jax.eval_shape(agent.actor.init, jax.random.key(0), obs)
    params = jax.tree.map(lambda x: fill(x.shape).astype(np.float32), shapes)
    head = params["params"]["MLP_0"][f"Dense_{len(config.hidden_sizes)}"]
    if bias is not None:  # with a zero kernel the head ignores the observation: logits or mean = bias
        head["kernel"], head["bias"] = np.zeros_like(head["kernel"]), np.asarray(bias, np.float32)
    if log_std is not None:
        params["params"]["log_std"] = np.asarray(log_std, np.float32)
    return params


def test_samples_follow_the_categorical_probabilities_and_no_key_gives_the_mode():
    config = pjv.Config(env_id="Acrobot-v1")  # three actions
    probs = np.array([0.1, 0.3, 0.6])
    act = make_policy(Agent.build(config), actor_params(config, np.zeros, bias=np.log(probs)))
    obs = np.random.default_rng(1).normal(size=(20_000, 6)).astype(np.float32)
    samples = np.asarray(act(obs, jax.random.key(3)))
    assert samples.dtype == np.int32 and samples.shape == (20_000,)
    frequencies = np.bincount(samples, minlength=3) / len(samples)
    np.testing.assert_allclose(frequencies, probs, atol=5 * np.sqrt(0.25 / len(samples)))
    assert np.all(np.asarray(act(obs[:50])) == 2)  # the mode: the most probable action
    assert int(act(obs[0])) == 2 and act(obs[0]).shape == ()
    single = [int(act(obs[0], jax.random.key(k))) for k in range(40)]
    assert len(set(single)) > 1  # one observation with a key is sampled too


def test_gaussian_samples_have_the_policys_mean_and_std():
    config = pjv.Config(env_id="Pendulum-v1")
    act = make_policy(Agent.build(config), actor_params(config, np.zeros, bias=[0.5], log_std=[np.log(0.3)]))
    obs = pendulum_obs(20_000)
    samples = np.asarray(act(obs, jax.random.key(4)))[:, 0]  # N(0.5, 0.3^2): clipping at +-2 is 5 sigma away
    assert abs(samples.mean() - 0.5) < 5 * 0.3 / np.sqrt(len(samples))
    assert abs(samples.std() - 0.3) < 0.01
    np.testing.assert_allclose(act(obs[:5]), 0.5, rtol=1e-6)  # the mode is the mean


@pytest.mark.parametrize("rescale", [False, True])
def test_continuous_actions_are_clipped_and_rescaled_as_the_trainer_sends_them(rescale):
    """Pendulum's box is [-2, 2]. The agent's own box is [-1, 1] with rescale_actions,
    mapped onto it by -2 + (a + 1) / 2 * 4 = 2a."""
    config = pjv.Config(env_id="Pendulum-v1", rescale_actions=rescale)
    rng = np.random.default_rng(5)
    params = actor_params(config, lambda shape: 0.3 * rng.standard_normal(shape))  # means of a few units
    obs = pendulum_obs(64)
    means = numpy_mlp(params, obs)
    assert (np.abs(means) > 2.2).any() and (np.abs(means) < 0.9).any()
    expected = 2.0 * np.clip(means, -1.0, 1.0) if rescale else np.clip(means, -2.0, 2.0)
    np.testing.assert_allclose(make_policy(Agent.build(config), params)(obs), expected, rtol=1e-5, atol=1e-5)


def test_load_policy_acts_as_the_results_policy(run_dir, pendulum):
    assert rundir.read_config(run_dir)[0] == PENDULUM  # the same run, trained in blocks
    obs, actions = pendulum_obs(8, seed=2), []
    for seed in range(2):
        loaded, trained = pjv.load_policy(run_dir, seed=seed), pendulum.policy(seed)
        # blocks of updates and one call agree up to float rounding (tested elsewhere to 1e-4)
        np.testing.assert_allclose(loaded(obs), trained(obs), atol=1e-4)
        key = jax.random.key(seed)
        np.testing.assert_allclose(loaded(obs, key), trained(obs, key), atol=1e-4)
        actions.append(np.asarray(loaded(obs)))
    assert np.abs(actions[0] - actions[1]).max() > 1e-3  # seed i's checkpointed parameters, not seed 0's


def test_bad_seeds_directories_observations_and_keys_are_clear_errors(run_dir, pendulum, tmp_path):
    for seed in (2, -1, 1.0, True):
        with pytest.raises(ValueError, match=r"seed: must be an integer >= 0 and <= 1"):
            pendulum.policy(seed)
        with pytest.raises(ValueError, match=r"seed: must be an integer >= 0 and <= 1"):
            pjv.load_policy(run_dir, seed=seed)
    with pytest.raises(ValueError, match="run_dir: .* does not exist"):
        pjv.load_policy(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="run_dir: .* is a file"):
        pjv.load_policy(tmp_path / "file")
    with pytest.raises(ValueError, match="run_dir: .* has no config.json"):
        pjv.load_policy(tmp_path)
    (tmp_path / "config.json").write_text((run_dir / "config.json").read_text())
    with pytest.raises(ValueError, match="run_dir: .* has no checkpoint"):
        pjv.load_policy(tmp_path)
    act = pendulum.policy(0)
    with pytest.raises(ValueError, match=r"obs: one observation of shape \(3,\)"):
        act(np.zeros((2, 4), np.float32))
    for key in (7, jax.random.split(jax.random.key(0), 2)):
        with pytest.raises(ValueError, match="key: one jax.random.key"):
            act(np.zeros(3, np.float32), key)
    with pytest.raises(ValueError, match="obs_stats"):
        make_policy(Agent.build(PENDULUM), jax.tree.map(lambda x: x[0], pendulum.final_state.actor_params))
