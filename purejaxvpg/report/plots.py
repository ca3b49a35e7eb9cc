"""Learning curves across seeds: IQM with a 95% stratified-bootstrap band.

matplotlib is imported inside learning_curve and draws on the Agg canvas directly, so
neither importing this module nor plotting needs pyplot or a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from purejaxvpg.report import stats

MAX_POINTS = 200
"""The curve is drawn at most at this many evenly spaced updates: a smooth enough line,
and the bootstrap cost stays bounded however many updates were run."""

# Resampling counts held at once per block of replicates, [num_seeds, block] int32:
# 1 MiB, small enough to stay in cache while every update reuses it.
_BLOCK_ELEMENTS = 1 << 18


def _bootstrap_iqm(returns: np.ndarray, reps: int, seed: int) -> np.ndarray:
    """IQM across seeds of `reps` bootstrap resamples of seeds: [reps, num_updates].

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


def iqm_band(returns, reps: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM across seeds at each update, with a 95% bootstrap percentile band.

    returns: [num_seeds, num_updates] (or [num_seeds] for one update). Returns
    (iqm [U], low [U], high [U]); iqm[u] equals scipy.stats.trim_mean(returns[:, u], 0.25).
    Seeds are resampled once per replicate for all updates (a single task, so stratified
    bootstrap is plain resampling of seeds).
    """
    x = np.asarray(returns, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"returns must be [num_seeds, num_updates], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("returns must be finite")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    point = stats.iqm(x, axis=0)
    boot = _bootstrap_iqm(x, reps, seed)
    # 95% percentile interval: the 2.5% and 97.5% quantiles of the replicate IQMs.
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    return point, low, high


def _evenly_spaced(count: int, limit: int) -> np.ndarray:
    """At most `limit` sorted indices into range(count), first and last included."""
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(int))


def learning_curve(
    env_steps,
    returns,
    path,
    title: str | None = None,
    reps: int = 1000,
    seed: int = 0,
    label: str | None = None,
    exclude=None,
) -> Path:
    """Plot the IQM episodic return across seeds per update with its 95% band; write a PNG.

    env_steps: [num_updates], environment steps per seed at each update.
    returns: [num_seeds, num_updates], episodic return per seed per update.
    exclude: optional bool [num_seeds], seeds to leave out (diverged: TrainResult.diverged_at
    >= 0). Seeds with any non-finite return are always left out; the axis label says how
    many, and a plot with no seed left says so instead of failing.
    At most MAX_POINTS evenly spaced updates are drawn. Parent directories of `path`
    are created. Returns the Path written.
    """
    steps = np.asarray(env_steps, dtype=float).reshape(-1)
    values = np.asarray(returns, dtype=float)
    if values.ndim == 1:
        values = values[None, :]  # one seed
    if values.ndim != 2 or values.shape[1] != steps.shape[0]:
        raise ValueError(
            f"returns must be [num_seeds, num_updates] with num_updates = len(env_steps) "
            f"= {steps.shape[0]}, got shape {values.shape}"
        )
    num_seeds = values.shape[0]
    kept = np.isfinite(values).all(axis=1)
    if exclude is not None:
        kept &= ~np.asarray(exclude, bool).reshape(num_seeds)
    keep = _evenly_spaced(steps.shape[0], MAX_POINTS)
    if kept.any():
        centre, low, high = iqm_band(values[kept][:, keep], reps=reps, seed=seed)

    # The Agg canvas on a bare Figure: no pyplot, so no display, no global backend switch
    # (gymnax already imports pyplot, and matplotlib.use would then close the caller's
    # open figures) and no figure left in pyplot's registry.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    used = int(kept.sum())
    if used:
        (line,) = ax.plot(steps[keep], centre, label=label)
        ax.fill_between(steps[keep], low, high, color=line.get_color(), alpha=0.25, linewidth=0)
    else:
        label = None
        ax.text(0.5, 0.5, f"all {num_seeds} seeds diverged: nothing to plot",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("environment steps per seed")
    seeds = f"{num_seeds} seeds" if used == num_seeds else (
        f"{used} of {num_seeds} seeds; {num_seeds - used} diverged, excluded")
    ax.set_ylabel(f"episodic return (IQM across {seeds}, 95% CI)")
    if title is not None:
        ax.set_title(title)
    if label is not None:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
