"""Per-update metrics reduced on device: scalars per update, never per step.

Memory therefore grows with seeds x updates, not with num_steps x num_envs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class EpisodeSummary:
    """Statistics of the episodes that finished in one update (each a scalar)."""

    return_mean: jax.Array
    return_min: jax.Array
    return_max: jax.Array
    length_mean: jax.Array
    length_min: jax.Array
    length_max: jax.Array

    @classmethod
    def zeros(cls) -> "EpisodeSummary":
        z = jnp.zeros((), jnp.float32)
        return cls(z, z, z, z, z, z)


def summarize_episodes(
    returns: jax.Array,
    lengths: jax.Array,
    finished: jax.Array,
    previous: EpisodeSummary,
) -> tuple[EpisodeSummary, jax.Array]:
    """Mean / min / max over the episodes that finished (`finished` [T, E] bool).

    Unfinished episodes are masked out by a count, so they never enter the mean and no
    NaN appears; if no episode finished, the previous update's summary is carried forward.
    Returns (summary, number of finished episodes).
    """
    count = jnp.sum(finished)
    any_finished = count > 0
    denom = jnp.maximum(count, 1).astype(jnp.float32)
    lengths = lengths.astype(jnp.float32)

    def stats(x):
        mean = jnp.sum(jnp.where(finished, x, 0.0)) / denom
        low = jnp.min(jnp.where(finished, x, jnp.inf))
        high = jnp.max(jnp.where(finished, x, -jnp.inf))
        return mean, low, high

    current = EpisodeSummary(*stats(returns), *stats(lengths))
    summary = jax.tree.map(lambda c, p: jnp.where(any_finished, c, p), current, previous)
    return summary, count.astype(jnp.int32)


def explained_variance(values: jax.Array, returns: jax.Array) -> jax.Array:
    """1 - Var(R - V) / Var(R): 1 is a perfect value function, 0 no better than a constant.

    Defined as 0 when the returns have no variance.
    """
    var_returns = jnp.var(returns)
    ev = 1.0 - jnp.var(returns - values) / jnp.maximum(var_returns, 1e-12)
    return jnp.where(var_returns > 1e-12, ev, 0.0)
