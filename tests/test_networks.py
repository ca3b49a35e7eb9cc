"""Network initialisation and heads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxvpg.algo.distributions import Categorical, DiagGaussian
from purejaxvpg.algo.networks import Actor, Critic, orthogonal


@pytest.mark.parametrize("shape", [(4, 64), (64, 64), (64, 2), (64, 1), (3, 5)])
def test_orthogonal_init_is_orthonormal(shape):
    scale = 1.7
    w = np.asarray(orthogonal(scale)(jax.random.key(0), shape), dtype=np.float64) / scale
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-5)


def test_orthogonal_init_is_random_and_vmappable_without_lapack():
    keys = jax.random.split(jax.random.key(1), 4)
    init = lambda k: orthogonal(1.0)(k, (8, 8))  # noqa: E731
    batch = np.asarray(jax.vmap(init)(keys))
    assert not np.allclose(batch[0], batch[1])
    assert "lapack" not in jax.jit(jax.vmap(init)).lower(keys).as_text().lower()
    # entries of a Haar-orthogonal n x n matrix have mean 0 and variance 1/n
    many = np.asarray(jax.vmap(init)(jax.random.split(jax.random.key(2), 2000)))
    assert abs(many.mean()) < 0.01 and abs(many.var() - 1 / 8) < 0.005


def test_heads_match_the_action_space():
    obs = jnp.ones((5, 3))
    discrete = Actor((16,), action_size=4, discrete=True)
    dist = discrete.apply(discrete.init(jax.random.key(0), obs), obs)
    assert isinstance(dist, Categorical) and dist.logits.shape == (5, 4)
    continuous = Actor((16,), action_size=2, discrete=False, log_std_init=-0.5)
    params = continuous.init(jax.random.key(0), obs)
    dist = continuous.apply(params, obs)
    assert isinstance(dist, DiagGaussian) and dist.mean.shape == (5, 2)
    np.testing.assert_allclose(np.asarray(params["params"]["log_std"]), [-0.5, -0.5])
    fixed = Actor((16,), action_size=2, discrete=False, log_std_init=-1.0, learn_log_std=False)
    fixed_params = fixed.init(jax.random.key(0), obs)
    assert "log_std" not in fixed_params["params"]
    np.testing.assert_allclose(np.asarray(fixed.apply(fixed_params, obs).log_std), [-1.0, -1.0])
    critic = Critic((16,))
    assert critic.apply(critic.init(jax.random.key(0), obs), obs).shape == (5,)
