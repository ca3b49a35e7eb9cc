"""Learning curves across seeds: IQM with a 95% stratified-bootstrap band.

matplotlib is imported inside learning_curve and draws on the Agg canvas directly, so
neither importing this module nor plotting needs pyplot or a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from purejaxvpg.report import comparisons

MAX_POINTS = 200
"""The curve is drawn at most at this many evenly spaced updates: a smooth enough line,
and the bootstrap cost stays bounded however many updates were run."""

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
    band = comparisons.sample_efficiency(x, reps=reps, seed=seed)  # 95%: the 2.5% and 97.5% quantiles
    return band.point, band.low, band.high


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


def bands(curves: dict, path, xlabel: str, ylabel: str, title: str | None = None, steps_axis: bool = True) -> Path:
    """One line with its shaded band per label (comparisons.Band) on one axis; write the
    figure (.png, .pdf or .svg, by the suffix). steps_axis: x ticks as 1M, 500k (not 1e6).
    Returns the Path written; its parent directories are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bands_figure(curves, xlabel, ylabel, title, steps_axis).savefig(path, dpi=120)
    return path


def bands_figure(curves: dict, xlabel: str, ylabel: str, title: str | None = None, steps_axis: bool = True):
    """The matplotlib Figure `bands` writes (its lines in the order of `curves`)."""
    return panels_figure({title: curves}, xlabel, ylabel, steps_axis)


def panels_figure(panels: dict, xlabel: str, ylabel: str, steps_axis: bool = True, points: frozenset = frozenset()):
    """One axis per panel (title -> {label: comparisons.Band}), at most PANELS_PER_ROW side by
    side, each band a line with its shaded interval; labels in `points` are drawn as markers
    with error bars (an evaluation, taken at a few steps). steps_axis: x ticks as 1M, 500k
    (not 1e6)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    columns = min(len(panels), PANELS_PER_ROW)
    rows = -(-len(panels) // columns)
    fig = Figure(figsize=(7.0 if len(panels) == 1 else 5.5 * columns, 4.5 * rows))
    FigureCanvasAgg(fig)
    grid = fig.subplots(rows, columns, squeeze=False)
    axes = grid.reshape(-1)[: len(panels)]
    for spare in grid.reshape(-1)[len(panels):]:
        fig.delaxes(spare)
    for ax, (title, curves) in zip(axes, panels.items()):
        for label, band in curves.items():
            if label in points:
                error = [np.asarray(band.point) - band.low, np.asarray(band.high) - band.point]
                ax.errorbar(band.x, band.point, yerr=error, fmt="o", capsize=3, label=label)
                continue
            (line,) = ax.plot(band.x, band.point, label=label)
            ax.fill_between(band.x, band.low, band.high, color=line.get_color(), alpha=0.25, linewidth=0)
        if steps_axis:
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_xlabel(xlabel)
        if title is not None:
            ax.set_title(title)
        ax.legend()
        ax.grid(alpha=0.3)
    for row in grid[:, 0]:
        row.set_ylabel(ylabel)
    fig.tight_layout()
    return fig


PANELS_PER_ROW = 3


def smooth(values, window: int) -> np.ndarray:
    """A centred moving average along the last axis, the window shrinking at the ends, so
    nothing moves in x: out[p] = mean(values[p - h .. p + h]) within bounds, h = window // 2.
    window: odd, >= 1 (1: unchanged)."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"smooth: the window must be an odd number >= 1, got {window}")
    x = np.asarray(values, dtype=float)
    h = window // 2
    if h == 0:
        return x.copy()
    n = x.shape[-1]
    sums = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(x, axis=-1)], axis=-1)
    lo, hi = np.maximum(np.arange(n) - h, 0), np.minimum(np.arange(n) + h + 1, n)
    return (sums[..., hi] - sums[..., lo]) / (hi - lo)
