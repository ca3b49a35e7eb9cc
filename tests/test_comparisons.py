"""Probability of improvement, performance profiles and sample-efficiency curves against the
definitions of Agarwal et al. (2021), scipy, hand-worked values and normal theory."""

import numpy as np
import pytest
from scipy import stats as sps

from purejaxvpg.report import comparisons, stats


def test_probability_of_improvement_hand_worked_with_ties():
    # x = 1, 2, 3 against y = 2, 2: S = 0, 0 | 1/2, 1/2 | 1, 1 -> 3 / 6
    assert comparisons.probability_of_improvement([1, 2, 3], [2, 2], reps=10).point == pytest.approx(0.5)
    # two tasks, averaged over tasks: task 0 as above (1/2), task 1: x = 5, 5, 5 > y = 1, 4 (1)
    x = np.array([[1, 5], [2, 5], [3, 5]])
    y = np.array([[2, 1], [2, 4]])
    assert comparisons.probability_of_improvement(x, y, reps=10).point == pytest.approx(0.75)


@pytest.mark.parametrize("n, k", [(5, 5), (8, 3), (20, 31)])
def test_probability_of_improvement_is_mann_whitney_u_over_nk(n, k):
    rng = np.random.default_rng(n * k)
    x, y = rng.integers(0, 6, n).astype(float), rng.integers(0, 6, k).astype(float)  # many ties
    u = sps.mannwhitneyu(x, y, alternative="two-sided").statistic  # U of x: wins + ties / 2
    assert comparisons.probability_of_improvement(x, y, reps=10).point == pytest.approx(u / (n * k))
    # and the two directions add up to 1
    back = comparisons.probability_of_improvement(y, x, reps=10).point
    assert comparisons.probability_of_improvement(x, y, reps=10).point + back == pytest.approx(1.0)


def test_probability_of_improvement_interval():
    rng = np.random.default_rng(0)
    assert comparisons.probability_of_improvement(rng.normal(10, 1, 16), rng.normal(0, 1, 16)) == stats.Interval(
        1.0, 1.0, 1.0)
    # equal distributions, large samples: the interval holds 1/2 and is about +-1.96 SE wide,
    # SE of the normalised U under equality sqrt((N + K + 1) / (12 N K))
    n = k = 200
    p = comparisons.probability_of_improvement(rng.normal(size=n), rng.normal(size=k), reps=3000)
    se = np.sqrt((n + k + 1) / (12 * n * k))
    assert p.low < 0.5 < p.high
    assert (p.high - p.low) == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_probability_of_improvement_is_deterministic_for_a_seed_and_checks_tasks():
    x, y = np.arange(12.0).reshape(6, 2), np.arange(8.0).reshape(4, 2)
    assert comparisons.probability_of_improvement(x, y, seed=4) == comparisons.probability_of_improvement(x, y, seed=4)
    with pytest.raises(ValueError, match="same tasks"):
        comparisons.probability_of_improvement(x, y[:, :1])


def test_performance_profile_hand_worked_and_strict():
    profile = comparisons.performance_profile([1, 2, 3, 4], [0, 2, 4], reps=200)
    np.testing.assert_allclose(profile.point, [1.0, 0.5, 0.0])  # "above tau": 2 and 4 are not above themselves
    assert profile.low[0] == profile.high[0] == 1.0 and profile.low[2] == profile.high[2] == 0.0
    # two tasks of 2 runs: fraction over all four runs
    np.testing.assert_allclose(comparisons.performance_profile([[0, 5], [1, 9]], [0.5], reps=10).point, [0.75])


def test_performance_profile_band_matches_binomial_theory():
    x = np.random.default_rng(1).uniform(size=400)
    profile = comparisons.performance_profile(x, [0.5], reps=4000)
    p = profile.point[0]
    assert (profile.high[0] - profile.low[0]) == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / 400), rel=0.15)


def test_sample_efficiency_point_is_the_iqm_at_each_point_and_band_is_per_point():
    curves = np.random.default_rng(2).normal(size=(12, 3, 6)).cumsum(axis=-1)  # [runs, tasks, points]
    band = comparisons.sample_efficiency(curves, x=np.arange(6) * 1000, reps=500, seed=5)
    flat = curves.reshape(36, 6)
    np.testing.assert_allclose(band.point, sps.trim_mean(flat, 0.25, axis=0), rtol=1e-12)
    for p in range(6):  # each point's band is that point's bootstrap over runs, within tasks
        ci = stats.bootstrap_ci(curves[:, :, p], stats.iqm, reps=500, seed=5)
        assert (band.low[p], band.high[p]) == pytest.approx((ci.low, ci.high))
    np.testing.assert_array_equal(band.x, np.arange(6) * 1000)
    one_task = comparisons.sample_efficiency(curves[:, 0, :], statistic=stats.mean, reps=50)
    np.testing.assert_allclose(one_task.point, curves[:, 0, :].mean(axis=0))


@pytest.mark.parametrize("call", [
    lambda: comparisons.sample_efficiency(np.zeros((4, 5)), x=[1, 2]),
    lambda: comparisons.sample_efficiency(np.zeros(4)),
    lambda: comparisons.performance_profile([1, 2], []),
    lambda: comparisons.probability_of_improvement([1, 2], [1], reps=0),
])
def test_bad_arguments_are_value_errors(call):
    with pytest.raises(ValueError):
        call()


def test_against_rliable_itself():
    # tests/data/rliable_reference.py ran rliable 1.2.0 (pandas 2.3.3) on these scores: the
    # points must agree exactly, the bootstrap intervals within resampling noise.
    import json
    from pathlib import Path

    ref = json.loads((Path(__file__).parent / "data" / "rliable_reference.json").read_text())
    x, y = np.array(ref["x"]), np.array(ref["y"])
    poi = comparisons.probability_of_improvement(x, y)
    assert poi.point == pytest.approx(ref["poi"], abs=1e-12)
    assert (poi.low, poi.high) == pytest.approx(ref["poi_ci"], abs=0.02)
    profile = comparisons.performance_profile(x, ref["taus"])
    np.testing.assert_allclose(profile.point, ref["profile"], atol=1e-12)
    np.testing.assert_allclose([profile.low, profile.high], ref["profile_ci"], atol=1 / 30 + 1e-9)
    curve = comparisons.sample_efficiency(np.array(ref["curves"]))
    np.testing.assert_allclose(curve.point, ref["iqm_curve"], atol=1e-12)
