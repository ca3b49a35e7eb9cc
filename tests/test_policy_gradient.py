"""The policy-gradient loss gives the analytic gradient of expected reward, in expectation.

One-step bandits, where J(theta) = E_{a ~ pi_theta}[r(a)] has a closed-form gradient:
  * categorical, pi = softmax(theta):  dJ/dtheta_k = pi_k (r_k - sum_j pi_j r_j)
  * Gaussian N(mu, sigma^2), r(a) = -(a - c)^2:  J = -((mu - c)^2 + sigma^2),
    dJ/dmu = -2 (mu - c),  dJ/dlog sigma = -2 sigma^2.
-grad of the loss with A = r, averaged over many samples, must match within 5 standard errors.
"""

import jax
import jax.numpy as jnp
import numpy as np

from purejaxvpg.distributions import Categorical, DiagGaussian
from purejaxvpg.updates import policy_gradient_loss

N = 400_000


def test_categorical_bandit_gradient_matches_analytic():
    theta = jnp.array([0.3, -0.5, 0.9, 0.0])
    arm_means = np.array([1.0, 2.0, -1.0, 0.5])
    key_a, key_r = jax.random.split(jax.random.key(0))
    actions = Categorical(jnp.broadcast_to(theta, (N, 4))).sample(key_a)
    rewards = jnp.asarray(arm_means)[actions] + jax.random.normal(key_r, (N,))  # noisy arms

    def loss(t):
        return policy_gradient_loss(Categorical(jnp.broadcast_to(t, (N, 4))), actions, rewards, 0.0)[0]

    estimate = -np.asarray(jax.grad(loss)(theta))
    pi = np.exp(np.asarray(theta)) / np.exp(np.asarray(theta)).sum()
    analytic = pi * (arm_means - pi @ arm_means)
    # standard error from per-sample gradients (onehot(a) - pi) * r, computed in numpy
    a, r = np.asarray(actions), np.asarray(rewards)
    per_sample = (np.eye(4)[a] - pi) * r[:, None]
    stderr = per_sample.std(0) / np.sqrt(N)
    assert np.all(np.abs(estimate - analytic) < 5 * stderr + 1e-6), (estimate, analytic, stderr)


def test_gaussian_bandit_gradient_matches_analytic():
    mu0, log_std0, c = 0.4, np.log(0.8), 1.5
    params = (jnp.array([mu0]), jnp.array([log_std0]))
    noise = jax.random.normal(jax.random.key(1), (N, 1))
    actions = mu0 + np.exp(log_std0) * noise  # sampled from the policy at params, fixed
    rewards = -((actions[:, 0] - c) ** 2)

    def loss(p):
        mean, log_std = p
        dist = DiagGaussian(jnp.broadcast_to(mean, (N, 1)), log_std)
        return policy_gradient_loss(dist, actions, rewards, 0.0)[0]

    g_mu, g_log_std = jax.grad(loss)(params)
    estimate = -np.array([g_mu[0], g_log_std[0]])
    sigma = np.exp(log_std0)
    analytic = np.array([-2 * (mu0 - c), -2 * sigma**2])
    z = np.asarray(noise[:, 0])
    r = np.asarray(rewards)
    per_sample = np.stack([r * z / sigma, r * (z**2 - 1)], axis=1)  # score function * r
    stderr = per_sample.std(0) / np.sqrt(N)
    assert np.all(np.abs(estimate - analytic) < 5 * stderr), (estimate, analytic, stderr)


def test_entropy_bonus_pushes_towards_uniform():
    theta = jnp.array([2.0, 0.0, -1.0])
    actions = jnp.zeros((10,), jnp.int32)
    zero_adv = jnp.zeros((10,))

    def loss(t):
        return policy_gradient_loss(Categorical(jnp.broadcast_to(t, (10, 3))), actions, zero_adv, 1.0)[0]

    stepped = theta - 0.1 * jax.grad(loss)(theta)
    entropy = lambda t: float(Categorical(t).entropy())  # noqa: E731
    assert entropy(stepped) > entropy(theta)
