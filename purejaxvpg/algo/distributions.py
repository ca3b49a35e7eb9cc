"""Action distributions: categorical (discrete) and diagonal Gaussian (continuous).

Both are pytrees with the same four methods, so the trainer never branches on the
action space after the policy head.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

LOG_2PI = math.log(2.0 * math.pi)


@struct.dataclass
class Categorical:
    """pi(a|s) = softmax(logits)[a].  logits: [..., num_actions]."""

    logits: jax.Array

    def log_prob(self, action: jax.Array) -> jax.Array:
        """action: [...] int -> [...]."""
        log_p = jax.nn.log_softmax(self.logits, axis=-1)
        return jnp.take_along_axis(log_p, action[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def entropy(self) -> jax.Array:
        """H = -sum_a p_a log p_a.  -> [...]."""
        log_p = jax.nn.log_softmax(self.logits, axis=-1)
        return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.categorical(key, self.logits, axis=-1).astype(jnp.int32)

    def mode(self) -> jax.Array:
        """The most probable action: the greedy choice."""
        return jnp.argmax(self.logits, axis=-1).astype(jnp.int32)


@struct.dataclass
class DiagGaussian:
    """Independent normal per action dimension.  mean, log_std: [..., n]."""

    mean: jax.Array
    log_std: jax.Array

    def log_prob(self, action: jax.Array) -> jax.Array:
        """Closed form, summed over the n action dimensions:

        log pi(a|s) = -1/2 * ( n log 2pi + sum_i [ (a_i - mu_i)^2 / sigma_i^2 + 2 log sigma_i ] )
        action: [..., n] -> [...].
        """
        z = (action - self.mean) * jnp.exp(-self.log_std)
        n = self.mean.shape[-1]
        return -0.5 * (n * LOG_2PI + jnp.sum(z**2 + 2.0 * self.log_std, axis=-1))

    def entropy(self) -> jax.Array:
        """H = sum_i (1/2 log(2 pi e) + log sigma_i).  -> [...]."""
        log_std = jnp.broadcast_to(self.log_std, self.mean.shape)
        return jnp.sum(0.5 * (LOG_2PI + 1.0) + log_std, axis=-1)

    def sample(self, key: jax.Array) -> jax.Array:
        noise = jax.random.normal(key, self.mean.shape, self.mean.dtype)
        return self.mean + jnp.exp(self.log_std) * noise

    def mode(self) -> jax.Array:
        return self.mean
