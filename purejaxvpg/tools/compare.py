"""`purejaxvpg compare`: runs of several algorithms or settings side by side, the way
Agarwal et al. (2021) recommend reporting them.

    purejaxvpg compare vpg=runs/a ppo=runs/b [--baseline vpg] [--metric eval_return_greedy]
                       [--gap-target 475] [--score-range CartPole-v1=0:500 ...] [--out DIR]

A label is an algorithm; its runs are its tasks (one run per environment, as `export
--format rliable`). The score is each seed's final evaluation (greedy, by default; the
last update's value of a training metric). Prints, per label, the IQM, mean and median of the final scores (and the
optimality gap with --gap-target) with 95% stratified-bootstrap intervals, and the
probability of improvement over the baseline. With --out, writes compare.json (every number),
performance_profile.png and sample_efficiency.png (IQM against env steps, with bands).
Several tasks are aggregated only on normalised scores: each needs --score-range ENV=LOW:HIGH
(LOW scores 0, HIGH scores 1; a random policy's return and the best possible one, say).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from purejaxvpg.report import comparisons, plots, stats, summary
from purejaxvpg.tools import export

PROFILE_POINTS = 101  # thresholds of the performance profile, evenly spaced over the scores


def parse_score_ranges(items: list[str]) -> dict[str, tuple[float, float]]:
    """['ENV=LOW:HIGH', ...] -> {env: (low, high)}; ValueError naming the bad item."""
    ranges = {}
    for item in items or []:
        env, _, span = item.rpartition("=")
        low, _, high = span.partition(":")
        try:
            pair = (float(low), float(high))
        except ValueError:
            pair = None
        if not env or pair is None or pair[0] == pair[1] or not all(np.isfinite(pair)):
            raise ValueError(f"score_range: expected ENV=LOW:HIGH with two different numbers, got {item!r}.")
        ranges[env] = pair
    return ranges


def normalised(score_dict: dict, tasks: list[str], ranges: dict) -> tuple[dict, str]:
    """Scores per label as given (one task) or normalised by --score-range (several); and
    how the y axis should read."""
    if len(tasks) == 1 and tasks[0] not in ranges:
        return score_dict, "score"
    missing = [t for t in tasks if t not in ranges]
    if missing:
        raise ValueError(f"score_range: runs of {len(tasks)} environments are aggregated on normalised scores; "
                         f"give --score-range ENV=LOW:HIGH for {', '.join(missing)}.")
    low = np.array([ranges[t][0] for t in tasks])
    high = np.array([ranges[t][1] for t in tasks])
    out = {}
    for label, scores in score_dict.items():
        shape = (1, len(tasks)) + (1,) * (scores.ndim - 2)  # [runs, tasks(, points)]
        out[label] = stats.normalize(scores, low.reshape(shape), high.reshape(shape))
    return out, "normalised score"


def compare(runs: list[export.Run], metric: str, baseline: str | None, gap_target: float | None,
            ranges: dict, reps: int = 2000, seed: int = 0) -> dict:
    """Every number `compare` prints and writes, as one JSON-ready dict."""
    final, info = export.rliable_scores(runs, metric, "final")
    tasks = info["tasks"]
    labels = list(final)
    baseline = labels[0] if baseline is None else baseline
    if baseline not in final:
        raise ValueError(f"baseline: no runs labelled {baseline!r}; labels: {', '.join(labels)}.")
    final, unit = normalised(final, tasks, ranges)
    record = {"metric": metric, "tasks": tasks, "unit": unit, "baseline": baseline, "reps": reps, "seed": seed,
              "score_ranges": {t: ranges[t] for t in tasks if t in ranges}, "run_dirs": info["run_dirs"],
              "labels": {}}
    for label, scores in final.items():
        row = {name: vars(interval) for name, interval in
               stats.aggregate(scores, reps=reps, seed=seed, gap_target=gap_target).items()}
        row["num_runs"] = int(scores.shape[0])
        if label != baseline:
            row["probability_of_improvement"] = vars(
                comparisons.probability_of_improvement(scores, final[baseline], reps=reps, seed=seed))
        record["labels"][label] = row
    everything = np.concatenate([s.reshape(-1) for s in final.values()])
    taus = np.linspace(everything.min(), everything.max(), PROFILE_POINTS)
    record["performance_profile"] = {label: _band(comparisons.performance_profile(s, taus, reps=reps, seed=seed))
                                     for label, s in final.items()}
    # a curve needs points: runs evaluated only at the end draw the training return's
    curve_metric = metric if all(run.series(metric)[0].shape[1] >= 2 for run in runs) else "episode_return"
    record["sample_efficiency_metric"] = curve_metric
    record["sample_efficiency"] = _curves(runs, curve_metric, tasks, ranges, reps, seed)
    return record


def _band(band: comparisons.Band) -> dict:
    return {k: np.asarray(getattr(band, k)).tolist() for k in ("x", "point", "low", "high")}


def _curves(runs, metric: str, tasks: list[str], ranges: dict, reps: int, seed: int) -> dict:
    """IQM curve per label over env steps; a label whose tasks were measured at different env
    steps gets {"skipped": why} instead."""
    try:
        curves, info = export.rliable_scores(runs, metric, "all")
    except ValueError as error:  # curves of different lengths
        return {"skipped": str(error)}
    curves, _ = normalised(curves, tasks, ranges)
    out = {}
    for label, c in curves.items():
        steps = [info["env_steps"][label][t] for t in tasks]
        if any(s != steps[0] for s in steps):
            out[label] = {"skipped": f"its runs of {', '.join(tasks)} were measured at different env steps"}
            continue
        keep = plots._evenly_spaced(c.shape[-1], plots.MAX_POINTS)
        out[label] = _band(comparisons.sample_efficiency(c[..., keep], x=np.asarray(steps[0])[keep], reps=reps,
                                                         seed=seed))
    return out


def table(record: dict) -> str:
    """The aggregate table, one block of lines per label."""
    rows = [("metric", f"{record['metric']} ({record['unit']}, final value of each seed)"),
            ("tasks", ", ".join(record["tasks"])), ("baseline", record["baseline"])]
    for label, row in record["labels"].items():
        rows.append((f"{label}: runs", str(row["num_runs"])))
        for name in ("iqm", "mean", "median", "optimality_gap"):
            if name in row:
                text = summary.interval_text(stats.Interval(**row[name]))
                rows.append((f"{label}: {name.replace('_', ' ')} [95% CI]", text))
        if "probability_of_improvement" in row:
            p = row["probability_of_improvement"]
            rows.append((f"{label}: P({label} > {record['baseline']}) [95% CI]",
                         f"{p['point']:.2f} [{p['low']:.2f}, {p['high']:.2f}]"))
    return summary.table(rows)


def write_figures(record: dict, out: Path) -> list[Path]:
    """compare.json, performance_profile.png, sample_efficiency.png (when any curve was drawn)."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "compare.json"]
    written[0].write_text(json.dumps(record, indent=1) + "\n")
    band = lambda d: comparisons.Band(*(np.asarray(d[k]) for k in ("x", "point", "low", "high")))  # noqa: E731
    unit = record["unit"]
    written.append(plots.bands({label: band(d) for label, d in record["performance_profile"].items()},
                               out / "performance_profile.png", f"{unit} (tau)",
                               f"fraction of runs with {unit} > tau (95% CI)", steps_axis=False,
                               title=f"performance profile: {record['metric']}"))
    curves = {label: band(d) for label, d in record["sample_efficiency"].items()
              if isinstance(d, dict) and "skipped" not in d and "point" in d}
    if curves:
        written.append(plots.bands(curves, out / "sample_efficiency.png", "environment steps per seed",
                                   f"IQM {unit} (95% CI)",
                                   title=f"sample efficiency: {record['sample_efficiency_metric']}"))
    return written


def command(args: argparse.Namespace) -> int:
    ranges = parse_score_ranges(args.score_range)  # every option before a run is read
    if args.metric is not None:
        export.check_metrics([args.metric], allow_all=False)
    if args.reps < 1:
        raise ValueError(f"reps: must be >= 1, got {args.reps}.")
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        raise ValueError(f"out: {args.out} is not empty; give a new folder.")
    runs = export.load_arguments(args.run_dirs)
    metric = args.metric or export.default_metric(runs)
    record = compare(runs, metric, args.baseline, args.gap_target, ranges, reps=args.reps, seed=args.seed)
    print(table(record))
    if args.out is not None:
        paths = write_figures(record, args.out)
        print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0
