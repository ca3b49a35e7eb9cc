"""encoder = 'cnn': 3x3 convolutions over [H, W, C] images before the hidden layers, checked
against a numpy correlation written out by hand; per-channel observation statistics against
numpy's over every pixel; the refusals that come before any compile; and a MinAtar run whose
trained policy acts."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import forbid_compiling

import purejaxvpg as pjv
from purejaxvpg import envs
from purejaxvpg.algo.networks import Actor, Encoder, orthogonal

MINATAR = pjv.Config(env_id="Breakout-MinAtar", encoder="cnn", hidden_sizes=(32,), activation="relu",
                     total_steps=8 * 16 * 3, num_envs=8, num_steps=16, eval_episodes=2, normalize_obs=True)


def _conv_reference(x, kernel, bias):
    """relu(valid 3x3 cross-correlation + bias): out[n, i, j, c] = sum over di, dj, k of
    x[n, i + di, j + dj, k] * kernel[di, dj, k, c]."""
    n, h, w, _ = x.shape
    out = np.zeros((n, h - 2, w - 2, kernel.shape[-1]))
    for i in range(h - 2):
        for j in range(w - 2):
            patch = x[:, i:i + 3, j:j + 3, :]  # [n, 3, 3, k]
            out[:, i, j, :] = np.einsum("nabk,abkc->nc", patch, kernel) + bias
    return np.maximum(out, 0.0)


def test_cnn_features_are_valid_3x3_correlations_then_relu_then_flattened():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, 6, 2)).astype(np.float32)
    encoder = Encoder("cnn", (4, 5))
    params = encoder.init(jax.random.key(0), jnp.asarray(x))
    convs = params["params"]
    k1, b1 = (rng.normal(size=convs["Conv_0"][n].shape).astype(np.float32) for n in ("kernel", "bias"))
    k2, b2 = (rng.normal(size=convs["Conv_1"][n].shape).astype(np.float32) for n in ("kernel", "bias"))
    params = {"params": {"Conv_0": {"kernel": k1, "bias": b1}, "Conv_1": {"kernel": k2, "bias": b2}}}
    out = np.asarray(encoder.apply(params, jnp.asarray(x)))
    want = _conv_reference(_conv_reference(x.astype(np.float64), k1, b1), k2, b2)  # [3, 3, 2, 5]
    assert want.shape == (3, 3, 2, 5)
    np.testing.assert_allclose(out, want.reshape(3, -1), rtol=1e-4, atol=1e-4)
    # 'mlp' flattens and nothing else
    np.testing.assert_array_equal(Encoder("mlp").apply({}, jnp.asarray(x)), x.reshape(3, -1))


def test_a_conv_kernel_starts_orthogonal_over_its_inputs():
    kernel = np.asarray(orthogonal(np.sqrt(2.0))(jax.random.key(1), (3, 3, 4, 16)))
    flat = kernel.reshape(36, 16)  # 36 inputs (3 x 3 x 4), 16 outputs: orthonormal columns x sqrt 2
    np.testing.assert_allclose(flat.T @ flat, 2.0 * np.eye(16), atol=1e-5)


class _Images:
    """A batch of 8 environments whose observations are Gaussian images [5, 4, 3] with
    another mean and scale per channel, different in every environment and step."""

    def reset(self, key, params):
        return self._images(key), None

    def step(self, key, state, action, params):
        return self._images(key), None, jnp.zeros(8), jnp.zeros(8, bool), jnp.zeros(8, bool), {
            "final_observation": self._images(key)}

    @staticmethod
    def _images(key):
        return jax.random.normal(key, (8, 5, 4, 3)) * jnp.array([1.0, 3.0, 0.5]) + jnp.array([0.0, 5.0, -2.0])


def test_per_channel_statistics_are_numpys_over_every_pixel_of_every_environment():
    wrapper = envs.NormalizeObservation(_Images(), per_channel=True)
    obs, state = wrapper.reset(jax.random.key(0), None)
    _, state, *_ = wrapper.step(jax.random.key(1), state, None, None)
    seen = np.concatenate([np.asarray(_Images._images(jax.random.key(k)), np.float64).reshape(-1, 3) for k in (0, 1)])
    n, prior = len(seen), 1e-4  # merged with the prior: 1e-4 pseudo-observations of mean 0, variance 1
    mean = n * seen.mean(axis=0) / (n + prior)
    var = (prior + n * seen.var(axis=0) + seen.mean(axis=0) ** 2 * prior * n / (n + prior)) / (n + prior)
    assert state.stats.mean.shape == (3,)
    np.testing.assert_allclose(state.stats.mean, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state.stats.var, var, rtol=1e-4)
    # the images normalised with them: each channel about mean 0, variance 1
    np.testing.assert_allclose(np.asarray(obs).reshape(-1, 3).mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(np.asarray(obs).reshape(-1, 3).var(axis=0), 1.0, rtol=1e-3)
    # per element (the MLP's): one statistic per pixel and channel
    _, elementwise = envs.NormalizeObservation(_Images()).reset(jax.random.key(0), None)
    assert elementwise.stats.mean.shape == (5, 4, 3)


@pytest.mark.parametrize("config,message", [
    (pjv.Config(env_id="CartPole-v1", encoder="cnn"),
     r"^encoder: 'cnn' reads \[H, W, C\] images; CartPole-v1's observations have shape \(4,\)"),
    (pjv.Config(env_id="Breakout-MinAtar", encoder="cnn", cnn_channels=(4,) * 5),
     r"^cnn_channels: 5 3x3 convolutions need images of at least 11x11; Breakout-MinAtar's are 10x10"),
    (pjv.Config(encoder="conv"), r"^encoder: must be one of mlp, cnn, got 'conv'"),
    (pjv.Config(cnn_channels=(16, 0)), r"^cnn_channels: must be a non-empty tuple of ints >= 1"),
])
def test_a_cnn_that_cannot_read_the_observations_is_refused_before_compiling(config, message, monkeypatch):
    forbid_compiling(monkeypatch)
    with pytest.raises(ValueError, match=message):
        pjv.train(config, num_seeds=1)


def test_the_cli_refuses_a_cnn_on_flat_observations_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "purejaxvpg", "train", "--encoder", "cnn", "--out",
                           str(tmp_path / "r")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "encoder: 'cnn' reads [H, W, C] images; CartPole-v1's observations have shape (4,)" in done.stderr


def test_a_minatar_cnn_run_trains_evaluates_and_its_policy_acts():
    result = pjv.train(MINATAR, num_seeds=2)
    actor = result.params["actor"]["params"]
    assert actor["Encoder_0"]["Conv_0"]["kernel"].shape == (2, 3, 3, 4, 16)
    assert actor["MLP_0"]["Dense_0"]["kernel"].shape == (2, 8 * 8 * 16, 32)
    assert np.isfinite(result.metrics["policy_loss"]).all() and result.final_eval["eval_return_greedy"].shape == (2,)
    env, params = envs.make("Breakout-MinAtar")
    obs, _ = env.reset(jax.random.key(3), params)
    act = result.policy(1)
    action = int(act(obs))  # the greedy action of one image, with the run's per-channel statistics
    assert 0 <= action < env.num_actions
    # the MLP reads the same images flattened: no convolution parameters
    mlp = Actor(hidden_sizes=(8,), action_size=3, discrete=True).init(jax.random.key(0), obs[None])
    assert list(mlp["params"]) == ["MLP_0"]


@pytest.mark.parametrize("channels", [(16,), (8, 4), (3, 5, 7)])
def test_the_memory_estimate_counts_the_encoders_real_features_activations_and_parameters(channels):
    """memory._encoder against the module's own shapes: the flattened features, every
    convolution's output, every kernel and bias (jax.eval_shape, nothing run)."""
    from purejaxvpg.host import memory

    config = pjv.Config(env_id="Breakout-MinAtar", encoder="cnn", cnn_channels=channels)
    obs = jnp.zeros((1, 10, 10, 4))
    encoder = Encoder("cnn", channels)
    params = jax.eval_shape(encoder.init, jax.random.key(0), obs)
    out, inner = jax.eval_shape(lambda p: encoder.apply(p, obs, capture_intermediates=True), params)
    convs = [v["__call__"][0] for k, v in inner["intermediates"].items() if k.startswith("Conv_")]
    features, activations, count = memory._encoder(config, (10, 10, 4))
    assert features == out.shape[1]
    assert activations == sum(np.prod(c.shape[1:]) for c in convs)
    assert count == sum(np.prod(x.shape) for x in jax.tree.leaves(params))
    assert memory._encoder(pjv.Config(), (10, 10, 4)) == (400, 0, 0)  # the MLP: flattened, nothing else
