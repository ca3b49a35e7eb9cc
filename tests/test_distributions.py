"""Log-probabilities and entropies against closed forms (scipy, numpy)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from purejaxvpg.algo.distributions import Categorical, DiagGaussian


def reference_text_gaussian_log_prob(a, mu, sigma):
    """The reference text: -1/2 (n log 2pi + sum_i [(a_i - mu_i)^2 / sigma_i^2 + 2 log sigma_i])."""
    n = a.shape[-1]
    return -0.5 * (n * math.log(2 * math.pi) + np.sum((a - mu) ** 2 / sigma**2 + 2 * np.log(sigma), axis=-1))


def test_gaussian_log_prob_matches_closed_form_and_scipy():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(64, 3))
    log_std = rng.normal(scale=0.5, size=(3,))
    a = rng.normal(scale=2.0, size=(64, 3))
    got = np.asarray(DiagGaussian(jnp.asarray(mu), jnp.asarray(log_std)).log_prob(jnp.asarray(a)))
    sigma = np.exp(log_std)
    np.testing.assert_allclose(got, reference_text_gaussian_log_prob(a, mu, sigma), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, scipy.stats.norm.logpdf(a, mu, sigma).sum(-1), rtol=1e-5, atol=1e-5)


def test_gaussian_entropy_matches_scipy():
    log_std = np.array([-1.0, 0.0, 0.7])
    mu = np.zeros((4, 3))
    got = np.asarray(DiagGaussian(jnp.asarray(mu), jnp.asarray(log_std)).entropy())
    expected = scipy.stats.norm(0, np.exp(log_std)).entropy().sum()
    np.testing.assert_allclose(got, np.full(4, expected), rtol=1e-5)


def test_gaussian_sample_moments_and_mode():
    mu = jnp.array([[1.0, -2.0]])
    log_std = jnp.log(jnp.array([0.5, 2.0]))
    dist = DiagGaussian(jnp.broadcast_to(mu, (200_000, 2)), log_std)
    samples = np.asarray(dist.sample(jax.random.key(0)))
    np.testing.assert_allclose(samples.mean(0), [1.0, -2.0], atol=0.02)
    np.testing.assert_allclose(samples.std(0), [0.5, 2.0], rtol=0.02)
    np.testing.assert_array_equal(np.asarray(dist.mode())[0], [1.0, -2.0])


def numpy_log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_categorical_log_prob_and_entropy_match_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(50, 6))
    actions = rng.integers(0, 6, size=50)
    dist = Categorical(jnp.asarray(logits))
    log_p = numpy_log_softmax(logits)
    np.testing.assert_allclose(np.asarray(dist.log_prob(jnp.asarray(actions))), log_p[np.arange(50), actions],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dist.entropy()), -(np.exp(log_p) * log_p).sum(-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(dist.mode()), logits.argmax(-1))


def test_categorical_sample_frequencies():
    logits = np.log(np.array([0.1, 0.2, 0.7]))
    dist = Categorical(jnp.broadcast_to(jnp.asarray(logits), (100_000, 3)))
    counts = np.bincount(np.asarray(dist.sample(jax.random.key(3))), minlength=3) / 100_000
    np.testing.assert_allclose(counts, [0.1, 0.2, 0.7], atol=0.01)
