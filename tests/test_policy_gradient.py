"""The policy-gradient loss gives the analytic gradient of expected reward, in expectation.

One-step bandits, where J(theta) = E_{a ~ pi_theta}[r(a)] has a closed-form gradient:
  * categorical, pi = softmax(theta):  dJ/dtheta_k = pi_k (r_k - sum_j pi_j r_j)
  * Gaussian N(mu, sigma^2), r(a) = -(a - c)^2:  J = -((mu - c)^2 + sigma^2),
    dJ/dmu = -2 (mu - c),  dJ/dlog sigma = -2 sigma^2.
-grad of the loss with A = r, averaged over many samples, must match within 5 standard errors.
The approx_kl that policy_step reports matches the closed-form KL(old || new) of the step.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from purejaxvpg.algo import losses as updates
from purejaxvpg.algo.distributions import Categorical, DiagGaussian
from purejaxvpg.algo.losses import policy_gradient_loss

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


N_KL = 50_000


def _check_kl(reported, per_sample_k3, analytic):
    """The k3 estimator mean[(r - 1) - log r], r = pi_new / pi_old at a ~ pi_old, is
    unbiased for KL(old || new): within 5 standard errors of the closed form."""
    stderr = per_sample_k3.std() / np.sqrt(len(per_sample_k3))
    assert analytic > 50 * stderr, (analytic, stderr)  # a step large enough to measure
    assert abs(reported - analytic) < 5 * stderr, (reported, analytic, stderr)


def test_approx_kl_of_a_categorical_step_matches_the_analytic_kl():
    theta = np.array([0.3, -0.5, 0.9, 0.0])
    p_old = np.exp(theta) / np.exp(theta).sum()
    rng = np.random.default_rng(1)
    actions = rng.choice(4, size=N_KL, p=p_old)
    advantages = np.array([1.0, -1.0, 0.5, 2.0])[actions]

    def apply_actor(logits, obs):
        return Categorical(jnp.broadcast_to(logits, (obs.shape[0], 4)))

    optimizer = optax.sgd(1.0)
    params = jnp.asarray(theta, jnp.float32)
    new, _, stats = updates.policy_step(
        apply_actor, params, optimizer.init(params), optimizer, jnp.zeros((N_KL, 1)),
        jnp.asarray(actions), jnp.asarray(advantages, jnp.float32), 0.0,
    )
    new = np.asarray(new, np.float64)
    p_new = np.exp(new) / np.exp(new).sum()
    analytic = np.sum(p_old * np.log(p_old / p_new))
    r = p_new[actions] / p_old[actions]
    _check_kl(float(stats.approx_kl), (r - 1) - np.log(r), analytic)


def test_approx_kl_of_a_gaussian_step_matches_the_analytic_kl():
    mu, log_std = np.array([0.2, -0.4]), np.array([-0.3, 0.1])
    sigma = np.exp(log_std)
    rng = np.random.default_rng(2)
    actions = mu + sigma * rng.normal(size=(N_KL, 2))
    target = np.array([1.0, 0.0])
    advantages = -np.sum((actions - target) ** 2, axis=1)

    def apply_actor(p, obs):
        return DiagGaussian(jnp.broadcast_to(p[0], (obs.shape[0], 2)), p[1])

    optimizer = optax.sgd(0.05)
    params = (jnp.asarray(mu, jnp.float32), jnp.asarray(log_std, jnp.float32))
    new, _, stats = updates.policy_step(
        apply_actor, params, optimizer.init(params), optimizer, jnp.zeros((N_KL, 1)),
        jnp.asarray(actions, jnp.float32), jnp.asarray(advantages, jnp.float32), 0.0,
    )
    mu_new, sigma_new = np.asarray(new[0], np.float64), np.exp(np.asarray(new[1], np.float64))
    # KL(N(mu, s^2) || N(mu', s'^2)) = sum_i log(s'/s) + (s^2 + (mu - mu')^2) / (2 s'^2) - 1/2
    analytic = np.sum(np.log(sigma_new / sigma) + (sigma**2 + (mu - mu_new) ** 2) / (2 * sigma_new**2) - 0.5)

    def log_pdf(m, s):
        return np.sum(-0.5 * ((actions - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi), axis=1)

    log_r = log_pdf(mu_new, sigma_new) - log_pdf(mu, sigma)
    _check_kl(float(stats.approx_kl), np.expm1(log_r) - log_r, analytic)


@pytest.mark.parametrize("advantages,message", [
    (np.zeros((8, 1)), r"input 0 has rank 2 \(shape \(8, 1\)\) but expected 1"),  # [N, 1]: would broadcast
    (np.zeros(7), r"different shape prefixes: \[\(8,\), \(8,\), \(7,\)\]"),
], ids=["[N, 1]", "[N - 1]"])
def test_policy_step_refuses_advantages_of_the_wrong_shape(advantages, message):
    optimizer, params = optax.sgd(1.0), jnp.zeros(4)

    def apply_actor(logits, obs):
        return Categorical(jnp.broadcast_to(logits, (obs.shape[0], 4)))

    with pytest.raises(AssertionError, match=message + r".*\[policy_step inputs 0-2: obs \[N, ...\]"):
        updates.policy_step(apply_actor, params, optimizer.init(params), optimizer, jnp.zeros((8, 1)),
                            jnp.zeros(8, jnp.int32), jnp.asarray(advantages, jnp.float32), 0.0)

