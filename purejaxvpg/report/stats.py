"""Aggregate scores across seeds (and tasks) with bootstrap confidence intervals.

Follows Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice": report
the interquartile mean (robust to a few outlier seeds, yet less noisy than the median)
with a stratified-bootstrap percentile interval, not a bare mean over a handful of seeds.

Every aggregate here is a plain numpy reduction `f(scores, axis=-1)`, so the bootstrap
can apply it to all replicates at once: one row of a [reps, num_runs * num_tasks] array
per replicate.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

Statistic = Callable[..., np.ndarray]
"""`statistic(x, axis=-1)`: reduces the given axis of x, e.g. iqm, mean, median, np.mean."""

# Upper bound on the number of resampled scores held at once (float64: 8 MiB per million).
# Replicates are drawn in chunks of at most this many values; the draws come from one
# Generator stream in order, so the result does not depend on the chunk size.
_CHUNK_ELEMENTS = 1 << 22


@dataclasses.dataclass(frozen=True)
class Interval:
    """A point estimate with the lower and upper ends of its confidence interval."""

    point: float
    low: float
    high: float


def iqm(scores, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of runs along `axis`.

    Exactly scipy.stats.trim_mean(scores, 0.25, axis): int(0.25 * n) values are cut from
    each end, so for n not divisible by 4 slightly more than half the runs are kept
    (n < 4 cuts nothing). Shape: scores with `axis` removed.
    """
    x = np.asarray(scores, dtype=float)
    axis = axis % x.ndim
    n = x.shape[axis]
    if n == 0:
        raise ValueError("iqm of an empty axis")
    cut = int(0.25 * n)
    # IQM = mean(x_(cut) .. x_(n-cut-1)) over the order statistics x_(0) <= ... <= x_(n-1).
    # A two-point partition puts exactly those ranks (in some order) between the two kth
    # positions, which is all a mean needs: O(n) instead of a full sort.
    x = np.partition(x, (cut, n - cut - 1), axis=axis)
    middle = [slice(None)] * x.ndim
    middle[axis] = slice(cut, n - cut)
    return x[tuple(middle)].mean(axis=axis)


def mean(scores, axis: int = -1) -> np.ndarray:
    """Arithmetic mean along `axis` (shape: scores with `axis` removed)."""
    return np.asarray(scores, dtype=float).mean(axis=axis)


def median(scores, axis: int = -1) -> np.ndarray:
    """Median along `axis` (shape: scores with `axis` removed)."""
    return np.median(np.asarray(scores, dtype=float), axis=axis)


def optimality_gap(scores, gamma_target: float, axis: int = -1) -> np.ndarray:
    """How far runs fall short of `gamma_target` on average; lower is better.

    Scores above the target count as 0 shortfall, so a few runs far above it cannot hide
    runs below it. Shape: scores with `axis` removed.
    """
    x = np.asarray(scores, dtype=float)
    # gap = mean(max(gamma - x, 0))
    return np.maximum(gamma_target - x, 0.0).mean(axis=axis)


def normalize(scores, random_score, max_score) -> np.ndarray:
    """Rescale so a random policy scores 0 and `max_score` scores 1, comparable across tasks.

    random_score and max_score broadcast against scores: scalars, or [num_tasks] against
    scores [num_runs, num_tasks]. Returns an array of the broadcast shape.
    """
    x = np.asarray(scores, dtype=float)
    lo = np.asarray(random_score, dtype=float)
    hi = np.asarray(max_score, dtype=float)
    if np.any(hi == lo):
        raise ValueError("max_score must differ from random_score")
    # (score - random) / (max - random)
    return (x - lo) / (hi - lo)


def _as_runs_by_tasks(scores_by_task) -> np.ndarray:
    """[num_runs] or [num_runs, num_tasks] -> float [num_runs, num_tasks]."""
    x = np.asarray(scores_by_task, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"scores_by_task must be [num_runs] or [num_runs, num_tasks], got shape {x.shape}"
        )
    return x


def _check_bootstrap_args(reps: int, confidence: float) -> None:
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _stratified_bootstrap(
    scores: np.ndarray,
    statistics: dict[str, Statistic],
    reps: int,
    confidence: float,
    seed: int,
) -> dict[str, Interval]:
    """Percentile intervals of several statistics from the same bootstrap replicates.

    scores: [num_runs, num_tasks]. Each replicate redraws num_runs runs with replacement
    within every task (column) separately, so each task keeps its own number of runs and
    between-task spread never leaks into the interval. The statistic then reduces all
    num_runs * num_tasks resampled values.
    """
    runs, tasks = scores.shape
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // (runs * tasks))
    columns = np.arange(tasks)
    boot = {name: np.empty(reps) for name in statistics}
    for start in range(0, reps, chunk):
        size = min(chunk, reps - start)
        rows = rng.integers(0, runs, size=(size, runs, tasks))  # [size, runs, tasks]
        sample = scores[rows, columns].reshape(size, runs * tasks)  # resampled, flattened
        for name, statistic in statistics.items():
            boot[name][start : start + size] = statistic(sample, axis=-1)
    # Percentile interval: the (1-c)/2 and (1+c)/2 quantiles of the replicate statistics.
    tail = 100.0 * (1.0 - confidence) / 2.0
    flat = scores.reshape(1, runs * tasks)
    result = {}
    for name, statistic in statistics.items():
        low, high = np.percentile(boot[name], [tail, 100.0 - tail])
        point = float(np.asarray(statistic(flat, axis=-1)).reshape(-1)[0])
        result[name] = Interval(point=point, low=float(low), high=float(high))
    return result


def bootstrap_ci(
    scores_by_task,
    statistic: Statistic,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Stratified-bootstrap percentile interval of `statistic` over runs (and tasks).

    scores_by_task: [num_runs, num_tasks], or [num_runs] for a single task.
    statistic: called as statistic(x, axis=-1) on x [replicates, num_runs * num_tasks]
    and must return [replicates] (iqm, mean, median here, np.mean, or a functools.partial
    of optimality_gap). Deterministic for a given seed.
    """
    _check_bootstrap_args(reps, confidence)
    scores = _as_runs_by_tasks(scores_by_task)
    return _stratified_bootstrap(scores, {"statistic": statistic}, reps, confidence, seed)[
        "statistic"
    ]


def aggregate(
    scores_by_task,
    reps: int = 2000,
    seed: int = 0,
    gap_target: float | None = None,
) -> dict[str, Interval]:
    """IQM, mean and median (and optimality gap if gap_target is given) with 95% CIs.

    scores_by_task: [num_runs, num_tasks] or [num_runs]. All statistics share one set of
    replicates, so each interval equals bootstrap_ci(scores_by_task, stat, reps, seed=seed).
    """
    _check_bootstrap_args(reps, 0.95)
    scores = _as_runs_by_tasks(scores_by_task)
    statistics: dict[str, Statistic] = {"iqm": iqm, "mean": mean, "median": median}
    if gap_target is not None:
        statistics["optimality_gap"] = functools.partial(
            optimality_gap, gamma_target=float(gap_target)
        )
    return _stratified_bootstrap(scores, statistics, reps, 0.95, seed)
