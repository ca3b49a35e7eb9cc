"""Per-update metrics reduced on device: scalars per update, never per step.

Memory therefore grows with seeds x updates, not with num_steps x num_envs.
`UpdateMetrics` and `EvalMetrics` are the one definition of every metric's name, dtype and
meaning: the CLI, metrics.csv, the README table (tested) and the memory estimate read them.
"""

from __future__ import annotations

import dataclasses

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
    def zeros(cls) -> EpisodeSummary:
        z = jnp.zeros((), jnp.float32)
        return cls(z, z, z, z, z, z)


def summarize_episodes(
    returns: jax.Array,
    lengths: jax.Array,
    finished: jax.Array,
    previous: EpisodeSummary,
) -> tuple[EpisodeSummary, jax.Array]:
    """Mean / min / max over the episodes that finished (`finished` bool, any shape: [T * E] in update).

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


def _metric(meaning: str, dtype=jnp.float32):
    """A metric field: one scalar per seed and update (or evaluation)."""
    return struct.field(metadata={"meaning": meaning, "dtype": dtype})


class _Metrics:
    """Name -> array views shared by the two metric dataclasses."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def meanings(cls) -> dict[str, str]:
        return {f.name: f.metadata["meaning"] for f in dataclasses.fields(cls)}

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.names()}

    def __getitem__(self, name: str):
        """metrics["policy_loss"]: the same array as metrics.policy_loss."""
        if name not in self.names():
            raise KeyError(name)
        return getattr(self, name)


@struct.dataclass
class UpdateMetrics(_Metrics):
    """What every update reports, per seed: each field a scalar (a leading [updates] axis
    after the scan, [num_seeds, updates] after vmap)."""

    episode_return: jax.Array = _metric(
        "mean undiscounted return of the episodes that finished during the update (the "
        "previous update's value when none did; 0 before the first episode ends)")
    episode_return_min: jax.Array = _metric("lowest return of those episodes")
    episode_return_max: jax.Array = _metric("highest return of those episodes")
    episode_length: jax.Array = _metric("mean length of those episodes")
    episode_length_min: jax.Array = _metric("shortest of those episodes")
    episode_length_max: jax.Array = _metric("longest of those episodes")
    episodes_finished: jax.Array = _metric(
        "episodes that finished during the update (terminated or truncated)", jnp.int32)
    env_steps: jax.Array = _metric("environment steps of this seed so far", jnp.int32)
    policy_loss: jax.Array = _metric("policy loss on the batch before the update")
    value_loss: jax.Array = _metric("value loss (mean squared error) before the first value step")
    entropy: jax.Array = _metric("mean policy entropy before the update")
    approx_kl: jax.Array = _metric(
        "KL(old policy, new policy) on the batch, k3 estimator mean((r - 1) - log r)")
    explained_variance: jax.Array = _metric(
        "1 - Var(R - V) / Var(R) of the value function before its update")
    policy_grad_norm: jax.Array = _metric("global norm of the policy gradient (before clipping)")
    value_grad_norm: jax.Array = _metric(
        "global norm of the first value step's gradient (before clipping)")
    greedy_fraction: jax.Array = _metric(
        "fraction of the update's rollout steps that took the policy's mode instead of a "
        "sample (greedy schedule; 0 when it is off)")

    @classmethod
    def of(cls, episodes: EpisodeSummary, finished, env_steps, policy, value, values, returns,
           greedy=None):
        """From the update's pieces: policy / value are losses.PolicyStats / ValueStats,
        values and returns V(s_t), R_t [T * E]; greedy: the rollout's greedy flags [T * E]
        (None: the schedule is off)."""
        return cls(
            episode_return=episodes.return_mean,
            episode_return_min=episodes.return_min,
            episode_return_max=episodes.return_max,
            episode_length=episodes.length_mean,
            episode_length_min=episodes.length_min,
            episode_length_max=episodes.length_max,
            episodes_finished=finished,
            env_steps=env_steps,
            policy_loss=policy.loss,
            value_loss=value.loss,
            entropy=policy.entropy,
            approx_kl=policy.approx_kl,
            explained_variance=explained_variance(values, returns),
            policy_grad_norm=policy.grad_norm,
            value_grad_norm=value.grad_norm,
            greedy_fraction=jnp.zeros((), jnp.float32) if greedy is None else jnp.mean(greedy, dtype=jnp.float32),
        )


@struct.dataclass
class EvalMetrics(_Metrics):
    """One evaluation of a seed (evaluate.py): each field a scalar ([num_evals] per seed
    after a run). Returns are the environment's own, before any reward scaling."""

    eval_return_greedy: jax.Array = _metric("mean return of the greedy (mode) policy's episodes")
    eval_return_stochastic: jax.Array = _metric("mean return of the sampling policy's episodes")
    eval_length_greedy: jax.Array = _metric("mean length of the greedy policy's episodes")
    eval_length_stochastic: jax.Array = _metric("mean length of the sampling policy's episodes")

    @classmethod
    def empty(cls) -> EvalMetrics:
        """No evaluations: every field [0]."""
        return cls(**{name: jnp.zeros((0,), jnp.float32) for name in cls.names()})

    @classmethod
    def not_taken(cls) -> EvalMetrics:
        """An evaluation not played yet (the final one, before the last update): NaN scalars."""
        return cls(**{name: jnp.full((), jnp.nan, jnp.float32) for name in cls.names()})


METRIC_NAMES = UpdateMetrics.names()
EVAL_METRIC_NAMES = EvalMetrics.names()
