"""`purejaxvpg plot`: runs side by side in one figure, one IQM curve with its 95% band per run.

    purejaxvpg plot vpg=runs/a ppo=runs/b [--metric eval_return_greedy] [--smooth 9]
                    [--x env_steps|updates|seconds] [--out fig.pdf|svg|png]

Runs on different environments go to one panel each. The default metric is the greedy
evaluation return where every run has a curve of evaluations (--eval-every; the final one
alone is a point, not a curve), else the training return. An evaluation metric (eval_*) is drawn as
points with error bars at the evaluations' steps (--eval-every's, then the final one).
Diverged seeds are left out and the legend says how many were kept. `--smooth N` is a centred
moving average over N points of each seed's curve (nothing moves in x), before the IQM.
"""

from __future__ import annotations

import argparse

import numpy as np

from purejaxvpg.algo.metrics import EVAL_METRIC_NAMES
from purejaxvpg.host import rundir
from purejaxvpg.report import comparisons, plots
from purejaxvpg.tools import export

X_AXES = {"env_steps": "environment steps per seed", "updates": "updates",
          "seconds": "seconds of run time (spread evenly over the updates)"}
SUFFIXES = (".png", ".pdf", ".svg")


def x_values(run: export.Run, metric: str, x: str) -> np.ndarray:
    """The x of each point of `metric` in `run` ([P]) on the chosen axis."""
    _, steps, update = run.series(metric)
    if x == "env_steps":
        return np.asarray(steps[0], dtype=float)
    if x == "updates":
        return update + 1.0
    results = rundir.read_info(run.path).get("results") or {}
    seconds, done = results.get("run_seconds"), results.get("updates_done")
    if not seconds or not done:
        raise ValueError(f"x: {run.path} records no run time (results.run_seconds); use --x env_steps.")
    return (update + 1.0) * seconds / done


def curves(runs: list[export.Run], metric: str, x: str, window: int, reps: int = 1000, seed: int = 0) -> dict:
    """{env_id: {legend label: Band}}: the IQM across the kept seeds at each point."""
    panels: dict[str, dict] = {}
    for run in runs:
        values, _, _ = run.series(metric)
        keep = ~run.diverged & np.isfinite(values).all(axis=1)
        label = run.label if keep.all() else f"{run.label} ({keep.sum()} of {keep.size} seeds; others diverged)"
        if not keep.any():
            raise ValueError(f"run_dir: every seed of {run.path} diverged; nothing to plot.")
        points = plots._evenly_spaced(values.shape[1], plots.MAX_POINTS)
        smoothed = plots.smooth(values[keep], window)[:, points]
        band = comparisons.sample_efficiency(smoothed, x=x_values(run, metric, x)[points], reps=reps, seed=seed)
        panel = panels.setdefault(run.env_id, {})
        if label in panel:
            raise ValueError(f"run_dir: two runs labelled '{run.label}' on {run.env_id}; label them apart as "
                             "LABEL=RUN_DIR.")
        panel[label] = band
    return panels


def command(args: argparse.Namespace) -> int:
    if args.x not in X_AXES:
        raise ValueError(f"x: unknown {args.x!r}; allowed: {', '.join(X_AXES)}.")
    if args.metric is not None:
        export.check_metrics([args.metric], allow_all=False)
    if args.out.suffix.lower() not in SUFFIXES:
        raise ValueError(f"out: {args.out} must end in {', '.join(SUFFIXES)} (the figure's format).")
    export.check_out(args.out, "plot", args.force)  # not a directory, new unless --force, writable
    if args.smooth < 1 or args.smooth % 2 == 0:
        raise ValueError(f"smooth: an odd number of points >= 1, got {args.smooth}.")
    runs = export.load_arguments(args.run_dirs)
    metric = args.metric or export.default_metric(runs, points=2)  # a curve, not one final point
    panels = curves(runs, metric, args.x, args.smooth)
    evaluation = metric in EVAL_METRIC_NAMES
    points = frozenset(label for panel in panels.values() for label in panel) if evaluation else frozenset()
    smoothed = f", smoothed over {args.smooth} points" if args.smooth > 1 else ""
    fig = plots.panels_figure(panels, X_AXES[args.x], f"{metric}\n(IQM across seeds, 95% CI{smoothed})",
                              steps_axis=args.x == "env_steps", points=points)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out} (metric: {metric})")
    return 0

