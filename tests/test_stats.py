"""Aggregate statistics against independent references: scipy, hand-worked values, theory."""

import functools

import numpy as np
import pytest
from scipy import stats as sps

from purejaxvpg.report import stats


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 64, 101])
def test_iqm_matches_scipy_trim_mean_1d(n):
    x = np.random.default_rng(n).standard_t(df=2, size=n)  # heavy tails: trimming matters
    assert stats.iqm(x) == pytest.approx(sps.trim_mean(x, 0.25), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("n", [5, 7, 8, 30])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_iqm_matches_scipy_trim_mean_2d(n, axis):
    x = np.random.default_rng(n).exponential(size=(n, n + 3))
    np.testing.assert_allclose(
        stats.iqm(x, axis=axis), sps.trim_mean(x, 0.25, axis=axis), rtol=1e-12
    )


def test_iqm_hand_worked():
    # n = 8: cut int(0.25 * 8) = 2 from each end of 1..8 -> mean(3, 4, 5, 6) = 4.5
    assert stats.iqm([8, 1, 7, 2, 6, 3, 5, 4]) == pytest.approx(4.5)
    # n = 5: cut int(1.25) = 1 -> sorted 1 2 4 10 100 keeps 2 4 10 -> 16 / 3
    assert stats.iqm([10, 1, 4, 2, 100]) == pytest.approx(16 / 3)
    # n = 3: cut 0, the plain mean
    assert stats.iqm([1, 2, 9]) == pytest.approx(4.0)


def test_mean_and_median():
    x = [3.0, 1.0, 2.0, 10.0]
    assert stats.mean(x) == pytest.approx(4.0)
    assert stats.median(x) == pytest.approx(2.5)


def test_optimality_gap_hand_worked():
    # gaps max(1 - x, 0) = 0.5, 0, 0.1, 1.1 -> mean 1.7 / 4
    assert stats.optimality_gap([0.5, 1.2, 0.9, -0.1], 1.0) == pytest.approx(0.425)
    assert stats.optimality_gap([2.0, 3.0], 1.0) == 0.0


def test_normalize():
    np.testing.assert_allclose(stats.normalize([10, 20, 30, 40], 10, 30), [0, 0.5, 1, 1.5])
    # per-task references broadcast over [runs, tasks]
    scores = np.array([[0.0, 100.0], [50.0, 300.0]])
    np.testing.assert_allclose(
        stats.normalize(scores, [0.0, 100.0], [100.0, 500.0]), [[0.0, 0.0], [0.5, 0.5]]
    )
    with pytest.raises(ValueError):
        stats.normalize([1.0], 2.0, 2.0)


def test_bootstrap_ci_of_mean_matches_normal_theory():
    x = np.random.default_rng(1).normal(5.0, 2.0, size=2000)
    ci = stats.bootstrap_ci(x, stats.mean, reps=2000, seed=0)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    width = 2 * half
    assert ci.point == pytest.approx(x.mean())
    assert abs(ci.low - (x.mean() - half)) < 0.1 * width
    assert abs(ci.high - (x.mean() + half)) < 0.1 * width
    assert abs((ci.high - ci.low) - width) < 0.1 * width


def test_bootstrap_is_stratified_by_task():
    scores = np.zeros((10, 2))
    scores[:, 1] = 1.0  # task 0 always scores 0, task 1 always 1
    ci = stats.bootstrap_ci(scores, stats.mean, reps=500, seed=0)
    # every stratified replicate keeps 10 runs of each task: mean exactly 0.5
    assert (ci.point, ci.low, ci.high) == (0.5, 0.5, 0.5)

    # reference: resampling the 20 pooled runs ignores the tasks and spreads the mean
    rng = np.random.default_rng(0)
    pooled = scores.reshape(-1)
    boot = pooled[rng.integers(0, pooled.size, size=(500, pooled.size))].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    assert high - low > 0.2


def test_one_task_1d_and_2d_agree():
    x = np.random.default_rng(2).normal(size=50)
    assert stats.bootstrap_ci(x, stats.iqm, reps=300, seed=3) == stats.bootstrap_ci(
        x[:, None], stats.iqm, reps=300, seed=3
    )


@pytest.mark.parametrize("statistic", [stats.iqm, stats.mean, stats.median, np.mean])
def test_interval_contains_point(statistic):
    x = np.random.default_rng(3).lognormal(size=(16, 5))
    ci = stats.bootstrap_ci(x, statistic, reps=500, seed=0)
    assert ci.low <= ci.point <= ci.high
    assert ci.low < ci.high
    assert ci.point == pytest.approx(float(statistic(x.reshape(-1))))


def test_deterministic_for_a_seed():
    x = np.random.default_rng(4).normal(size=(20, 3))
    a = stats.bootstrap_ci(x, stats.iqm, reps=400, seed=7)
    b = stats.bootstrap_ci(x, stats.iqm, reps=400, seed=7)
    c = stats.bootstrap_ci(x, stats.iqm, reps=400, seed=8)
    assert a == b
    assert a != c


def test_result_does_not_depend_on_chunk_size(monkeypatch):
    x = np.random.default_rng(5).normal(size=(30, 4))
    whole = stats.bootstrap_ci(x, stats.iqm, reps=300, seed=1)
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 7 * 30 * 4)  # 7 replicates per chunk
    assert stats.bootstrap_ci(x, stats.iqm, reps=300, seed=1) == whole


def test_coverage_of_the_mean():
    # Percentile bootstrap of a mean from n = 30 normal draws: coverage near 95%
    # (slightly under for small n); 200 trials give a binomial sd of about 1.6%.
    rng = np.random.default_rng(6)
    true_mean, trials = 3.0, 200
    covered = 0
    for t in range(trials):
        x = rng.normal(true_mean, 2.0, size=30)
        ci = stats.bootstrap_ci(x, stats.mean, reps=500, seed=t)
        covered += ci.low <= true_mean <= ci.high
    assert 0.88 <= covered / trials <= 0.99


def test_aggregate_keys_and_values():
    x = np.random.default_rng(7).uniform(size=(12, 3))
    out = stats.aggregate(x, reps=300, seed=2)
    assert set(out) == {"iqm", "mean", "median"}
    assert out["iqm"].point == pytest.approx(sps.trim_mean(x.reshape(-1), 0.25))
    assert out["mean"].point == pytest.approx(x.mean())
    assert out["median"].point == pytest.approx(np.median(x))
    assert out["iqm"] == stats.bootstrap_ci(x, stats.iqm, reps=300, seed=2)

    gap = stats.aggregate(x, reps=300, seed=2, gap_target=0.8)["optimality_gap"]
    assert gap.point == pytest.approx(np.maximum(0.8 - x, 0).mean())
    assert gap == stats.bootstrap_ci(
        x, functools.partial(stats.optimality_gap, gamma_target=0.8), reps=300, seed=2
    )
    assert gap.low <= gap.point <= gap.high


def test_large_inputs_run():
    # 2000 reps x 64 runs x 12 tasks and 8192 runs x 1 task, the shapes it is used on
    rng = np.random.default_rng(8)
    out = stats.aggregate(rng.normal(size=(64, 12)), reps=2000, gap_target=1.0)
    assert all(v.low <= v.point <= v.high for v in out.values())
    ci = stats.bootstrap_ci(rng.normal(size=8192), stats.iqm, reps=2000)
    assert ci.low <= ci.point <= ci.high


@pytest.mark.parametrize(
    "bad", [np.zeros((0,)), np.zeros((3, 0)), np.zeros((2, 2, 2))]
)
def test_rejects_bad_shapes(bad):
    with pytest.raises(ValueError):
        stats.bootstrap_ci(bad, stats.mean)
