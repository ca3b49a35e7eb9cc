"""Learning-curve plot: the IQM line against scipy, the band against the per-update bootstrap."""

import numpy as np
import pytest
from scipy import stats as sps

from purejaxvpg.report import comparisons, plots, stats

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic_returns(seeds, updates, seed=0):
    """[seeds, updates]: rising curves, per-seed offsets and a few failed seeds (outliers)."""
    rng = np.random.default_rng(seed)
    base = 100 * (1 - np.exp(-np.arange(updates) / (updates / 4)))
    x = base + rng.normal(0, 10, size=(seeds, updates)) + rng.normal(0, 5, size=(seeds, 1))
    x[: max(1, seeds // 10)] = rng.uniform(0, 5, size=(max(1, seeds // 10), updates))
    return x


@pytest.mark.parametrize("seeds", [1, 3, 7, 8, 13, 32])
def test_iqm_band_line_is_trim_mean_per_update(seeds):
    returns = synthetic_returns(seeds, 25, seed=seeds)
    centre, low, high = plots.iqm_band(returns, reps=300, seed=0)
    assert centre.shape == low.shape == high.shape == (25,)
    np.testing.assert_allclose(centre, sps.trim_mean(returns, 0.25, axis=0), rtol=1e-12)
    assert np.all(low <= centre + 1e-9)
    assert np.all(centre <= high + 1e-9)


def test_iqm_band_equals_per_update_bootstrap_ci():
    # The vectorised band (seeds resampled once per replicate for all updates, IQM from
    # resampling counts) against the plain gather-and-trim path of stats.bootstrap_ci.
    returns = synthetic_returns(21, 6, seed=1)
    centre, low, high = plots.iqm_band(returns, reps=400, seed=5)
    for u in range(returns.shape[1]):
        ci = stats.bootstrap_ci(returns[:, u], stats.iqm, reps=400, seed=5)
        assert (centre[u], low[u], high[u]) == pytest.approx((ci.point, ci.low, ci.high))


def test_iqm_band_block_size_does_not_matter(monkeypatch):
    returns = synthetic_returns(16, 5, seed=2)
    whole = plots.iqm_band(returns, reps=100, seed=3)
    monkeypatch.setattr(comparisons, "_BLOCK_ELEMENTS", 16 * 3)  # 3 replicates per block
    for a, b in zip(whole, plots.iqm_band(returns, reps=100, seed=3)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_learning_curve_writes_png(tmp_path):
    returns = synthetic_returns(8, 40)
    steps = np.arange(1, 41) * 128
    path = plots.learning_curve(
        steps, returns, tmp_path / "nested" / "dir" / "curve.png", title="t", label="vpg", reps=200
    )
    assert path == tmp_path / "nested" / "dir" / "curve.png"
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG_MAGIC


def test_learning_curve_many_updates_and_seeds(tmp_path):
    # thousands of updates are subsampled to at most MAX_POINTS before bootstrapping
    returns = synthetic_returns(512, 3000)
    path = plots.learning_curve(np.arange(3000) * 64, returns, str(tmp_path / "big.png"), reps=200)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_evenly_spaced_keeps_ends():
    idx = plots._evenly_spaced(3000, plots.MAX_POINTS)
    assert len(idx) <= plots.MAX_POINTS
    assert idx[0] == 0 and idx[-1] == 2999
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(plots._evenly_spaced(7, plots.MAX_POINTS), np.arange(7))


def test_learning_curve_rejects_mismatched_shapes(tmp_path):
    with pytest.raises(ValueError):
        plots.learning_curve(np.arange(5), np.zeros((3, 6)), tmp_path / "x.png")


def test_learning_curve_leaves_pyplot_alone(tmp_path):
    # gymnax imports pyplot with purejaxvpg; the plot must not open figures there
    # or switch the backend a caller picked.
    import matplotlib
    import matplotlib.pyplot as plt

    before = (matplotlib.rcParams._get("backend"), plt.get_fignums())
    plots.learning_curve(np.arange(4), np.ones((3, 4)), tmp_path / "c.png", reps=50)
    assert (matplotlib.rcParams._get("backend"), plt.get_fignums()) == before


def test_many_panels_wrap_into_rows_of_three():
    from purejaxvpg.report.comparisons import Band

    band = Band(np.arange(3.0), np.ones(3), np.zeros(3), 2 * np.ones(3))
    fig = plots.panels_figure({f"env{i}": {"a": band} for i in range(4)}, "x", "y")
    assert len(fig.axes) == 4  # the two spare cells of the 2 x 3 grid removed
    positions = sorted({round(ax.get_position().y0, 3) for ax in fig.axes})
    assert len(positions) == 2  # two rows
    assert [ax.get_ylabel() for ax in fig.axes] == ["y", "", "", "y"]
    assert [ax.get_title() for ax in fig.axes] == ["env0", "env1", "env2", "env3"]
