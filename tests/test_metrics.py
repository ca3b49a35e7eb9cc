"""Per-update metric reductions against numpy."""

import jax.numpy as jnp
import numpy as np

from purejaxvpg.algo.metrics import EpisodeSummary, explained_variance, summarize_episodes


def test_summary_uses_only_finished_episodes():
    rng = np.random.default_rng(0)
    returns = rng.normal(100, 30, size=(16, 4)).astype(np.float32)
    lengths = rng.integers(1, 500, size=(16, 4))
    finished = rng.random((16, 4)) < 0.2
    summary, count = summarize_episodes(
        jnp.asarray(returns), jnp.asarray(lengths), jnp.asarray(finished), EpisodeSummary.zeros()
    )
    assert int(count) == finished.sum() > 0
    np.testing.assert_allclose(float(summary.return_mean), returns[finished].mean(), rtol=1e-5)
    np.testing.assert_allclose(float(summary.return_min), returns[finished].min(), rtol=1e-6)
    np.testing.assert_allclose(float(summary.return_max), returns[finished].max(), rtol=1e-6)
    np.testing.assert_allclose(float(summary.length_mean), lengths[finished].mean(), rtol=1e-5)
    assert float(summary.length_min) == lengths[finished].min()
    assert float(summary.length_max) == lengths[finished].max()


def test_no_finished_episode_carries_previous_summary_forward_without_nan():
    previous = EpisodeSummary(*(jnp.float32(v) for v in (5.0, 1.0, 9.0, 50.0, 10.0, 90.0)))
    summary, count = summarize_episodes(
        jnp.full((8, 2), 123.0), jnp.full((8, 2), 7), jnp.zeros((8, 2), bool), previous
    )
    assert int(count) == 0
    got = [float(x) for x in (summary.return_mean, summary.return_min, summary.return_max,
                              summary.length_mean, summary.length_min, summary.length_max)]
    assert got == [5.0, 1.0, 9.0, 50.0, 10.0, 90.0]


def test_explained_variance():
    rng = np.random.default_rng(1)
    returns = rng.normal(size=1000)
    values = returns + rng.normal(scale=0.5, size=1000)
    expected = 1 - np.var(returns - values) / np.var(returns)
    ev = float(explained_variance(jnp.asarray(values), jnp.asarray(returns)))
    np.testing.assert_allclose(ev, expected, rtol=1e-4)
    assert float(explained_variance(jnp.zeros(10), jnp.ones(10))) == 0.0  # constant returns: defined as 0
