"""Comparing algorithms beyond one aggregate score, as Agarwal et al. (2021, "Deep RL at the
Edge of the Statistical Precipice") recommend: the probability of improvement, performance
profiles and sample-efficiency curves, each with a stratified-bootstrap percentile interval.

Scores are [num_runs, num_tasks] (or [num_runs] for one task); curves add a points axis.
Every interval resamples runs with replacement within each task (stats.py's bootstrap), so
the draws for a given seed are the same as `stats.bootstrap_ci`'s.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from purejaxvpg.report import stats


@dataclasses.dataclass(frozen=True)
class Band:
    """A curve with its confidence band: point, low and high at each x. Arrays of one length."""

    x: np.ndarray
    point: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _percentiles(boot: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The (1-c)/2 and (1+c)/2 quantiles over axis 0 (the replicates), as stats.py takes them."""
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(boot, [tail, 100.0 - tail], axis=0)
    return low, high


def _resampled(scores: np.ndarray, reps: int, rng: np.random.Generator, expand: int = 1):
    """Chunks of bootstrap replicates of scores [runs, tasks, ...]: yields (start, sample
    [size, runs, tasks, ...]), runs redrawn within each task; the index draws are stats.py's
    (one Generator stream, [size, runs, tasks] per chunk), so chunking does not change them.
    `expand`: how many values the caller makes of each resampled one (bounds the memory)."""
    runs, tasks = scores.shape[:2]
    per_replicate = int(np.prod(scores.shape)) * expand
    chunk = max(1, stats._CHUNK_ELEMENTS // per_replicate)
    columns = np.arange(tasks)
    for start in range(0, reps, chunk):
        size = min(chunk, reps - start)
        rows = rng.integers(0, runs, size=(size, runs, tasks))
        yield start, scores[rows, columns]


# Resampling counts held at once per block of replicates, [num_seeds, block] int32:
# 1 MiB, small enough to stay in cache while every update reuses it.
_BLOCK_ELEMENTS = 1 << 18


def _iqm_replicates(returns: np.ndarray, reps: int, seed: int) -> np.ndarray:
    """sample_efficiency's replicates for one task and the IQM, fast: [reps, num_updates].

    returns: [num_seeds, num_updates]. Each replicate redraws num_seeds seeds with
    replacement, the same seeds for every update. The draws are those of
    stats.bootstrap_ci(returns[:, u], stats.iqm, reps, seed=seed) for each u.

    Instead of gathering and partitioning a [reps, seeds, updates] array, each update's
    returns are sorted once and a replicate is reduced to how often it drew each seed:
    with v_0 <= ... <= v_{S-1} the sorted returns of one update, c_j how often the seed
    holding v_j was drawn, C_j = c_0 + ... + c_j and cut = int(S / 4), the resample's
    sorted values occupy positions [C_{j-1}, C_j) with value v_j, so
        IQM = sum_j v_j * (clip(C_j, cut, S - cut) - clip(C_{j-1}, cut, S - cut)) / (S - 2 cut)
    which is one cumulative sum and one dot product per update.
    """
    seeds, updates = returns.shape
    cut = int(0.25 * seeds)  # as stats.iqm / scipy.stats.trim_mean(x, 0.25)
    keep = seeds - 2 * cut
    order = np.argsort(returns, axis=0, kind="stable")  # [S, U]
    ordered = np.take_along_axis(returns, order, axis=0)  # [S, U], each column ascending
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_ELEMENTS // seeds)
    out = np.empty((reps, updates))
    for start in range(0, reps, block):
        n = min(block, reps - start)
        drawn = rng.integers(0, seeds, size=(n, seeds))  # [n, S] resampled seed ids
        flat = (drawn + seeds * np.arange(n)[:, None]).ravel()
        counts = np.bincount(flat, minlength=n * seeds).reshape(n, seeds)
        counts = np.ascontiguousarray(counts.T, dtype=np.int32)  # [S, n]
        cum = np.empty((seeds, n), np.int32)
        weight = np.empty((seeds, n))
        for u in range(updates):
            np.take(counts, order[:, u], axis=0, out=cum)  # c_j in ascending-return order
            np.cumsum(cum, axis=0, out=cum)  # C_j
            np.clip(cum, cut, seeds - cut, out=cum)
            weight[0] = cum[0] - cut  # clip(C_{-1} = 0) = cut
            np.subtract(cum[1:], cum[:-1], out=weight[1:])
            out[start : start + n, u] = ordered[:, u] @ weight
    return out / keep


def probability_of_improvement(x, y, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> stats.Interval:
    """P(X > Y): how likely a run of X beats a run of Y on a task drawn at random.

    P(X > Y) = 1/M sum_m P(X_m > Y_m), P(X_m > Y_m) = 1/(N K) sum_i sum_j S(x_mi, y_mj),
    S(a, b) = 1 if a > b, 1/2 if a = b, 0 otherwise (the Mann-Whitney U statistic over N K).
    x [N, M] and y [K, M] (or 1-D for one task): the same tasks, any run counts. The interval
    resamples the runs of x and of y independently, within each task.
    """
    stats._check_bootstrap_args(reps, confidence)
    xs, ys = stats._as_runs_by_tasks(x), stats._as_runs_by_tasks(y)
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x and y must have the same tasks: shapes {xs.shape} and {ys.shape}")
    n, k = xs.shape[0], ys.shape[0]
    # S[m, i, j] = 1[x_mi > y_mj] + 1/2 1[x_mi = y_mj]
    wins = (xs.T[:, :, None] > ys.T[:, None, :]) + 0.5 * (xs.T[:, :, None] == ys.T[:, None, :])
    point = float(wins.mean(axis=(1, 2)).mean())
    # A replicate's mean of S over its resampled runs is cx^T S cy / (N K), cx and cy the
    # number of times each run was drawn.
    rng_x, rng_y = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    boot = np.empty(reps)
    chunk = max(1, stats._CHUNK_ELEMENTS // (max(n, k) ** 2 * xs.shape[1]))
    for start in range(0, reps, chunk):
        size = min(chunk, reps - start)
        ix = rng_x.integers(0, n, size=(size, n, xs.shape[1]))  # [size, N, M]
        iy = rng_y.integers(0, k, size=(size, k, ys.shape[1]))
        cx = (ix[:, :, :, None] == np.arange(n)).sum(axis=1)  # [size, M, N]
        cy = (iy[:, :, :, None] == np.arange(k)).sum(axis=1)  # [size, M, K]
        per_task = np.einsum("smi,mij,smj->sm", cx, wins, cy) / (n * k)
        boot[start : start + size] = per_task.mean(axis=1)
    low, high = _percentiles(boot, confidence)
    return stats.Interval(point=point, low=float(low), high=float(high))


def performance_profile(scores, taus, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> Band:
    """The run-score distribution: at each tau, the fraction of runs scoring above it.

    F(tau) = 1/M sum_m 1/N sum_n 1[x_mn > tau], scores [N, M] (or [N]); taus [T]. The band
    resamples runs within each task.
    """
    stats._check_bootstrap_args(reps, confidence)
    x = stats._as_runs_by_tasks(scores)
    taus = np.asarray(taus, dtype=float).reshape(-1)
    if taus.size == 0:
        raise ValueError("taus: give at least one threshold")
    point = (x[:, :, None] > taus).mean(axis=(0, 1))
    boot = np.empty((reps, taus.size))
    for start, sample in _resampled(x, reps, np.random.default_rng(seed), expand=taus.size):
        boot[start : start + len(sample)] = (sample[..., None] > taus).mean(axis=(1, 2))
    low, high = _percentiles(boot, confidence)
    return Band(x=taus, point=point, low=low, high=high)


def sample_efficiency(curves, x=None, statistic=stats.iqm, reps: int = 2000, confidence: float = 0.95,
                      seed: int = 0) -> Band:
    """An aggregate (IQM by default) at every point of a learning curve, with its band.

    curves: [N, P] for one task or [N, M, P]; x: the P env steps (default 0..P-1). At each
    point the band is `stats.bootstrap_ci(curves[..., p], statistic, reps, confidence, seed)`:
    the same draws for every point, so the band is as smooth as the curves.
    """
    stats._check_bootstrap_args(reps, confidence)
    c = np.asarray(curves, dtype=float)
    if c.ndim == 2:
        c = c[:, None, :]
    if c.ndim != 3 or 0 in c.shape:
        raise ValueError(f"curves must be [num_runs, num_points] or [num_runs, num_tasks, num_points], got {c.shape}")
    runs, tasks, points = c.shape
    x = np.arange(points) if x is None else np.asarray(x).reshape(-1)
    if x.size != points:
        raise ValueError(f"x: {x.size} values for {points} points")
    point = statistic(c.reshape(runs * tasks, points), axis=0)
    if tasks == 1 and statistic is stats.iqm:  # every run directory's learning curve: the same draws, faster
        boot = _iqm_replicates(c[:, 0, :], reps, seed)
    else:
        boot = np.empty((reps, points))
        for start, sample in _resampled(c, reps, np.random.default_rng(seed)):
            boot[start : start + len(sample)] = statistic(sample.reshape(len(sample), runs * tasks, points), axis=1)
    low, high = _percentiles(boot, confidence)
    return Band(x=x, point=np.asarray(point), low=low, high=high)
