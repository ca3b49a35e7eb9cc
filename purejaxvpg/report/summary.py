"""What a finished run reports on the terminal and in config.json's "results".

Diverged seeds are listed and left out of every aggregate, never averaged in.
"""

from __future__ import annotations

import numpy as np

from purejaxvpg.report import stats


def final_returns(result) -> np.ndarray:
    """The episodic return at the last update of each seed that did not diverge
    (`result.finite_seeds`), [finite seeds]: diverged seeds never enter an aggregate."""
    return result.metrics["episode_return"][result.finite_seeds, -1]


def divergence(result, limit: int = 10) -> str | None:
    """'2 of 8 seeds diverged: seed 3 at update 0, seed 5 at update 12', or None. A seed
    range (seed_start K) names global seeds with their index: 'seed 67 (index 3) at ...'."""
    at = result.diverged_at
    seeds = np.flatnonzero(at >= 0)
    if seeds.size == 0:
        return None
    start = result.seed_start
    name = (lambda i: f"seed {start + i} (index {i})") if start else (lambda i: f"seed {i}")  # noqa: E731
    listed = ", ".join(f"{name(i)} at update {at[i]}" for i in seeds[:limit])
    more = f", and {seeds.size - limit} more" if seeds.size > limit else ""
    return f"{seeds.size} of {result.num_seeds} seeds diverged (non-finite metrics or parameters): {listed}{more}"


def summary(result, reps: int = 2000) -> str:
    """The end-of-run table: final returns across seeds (IQM, mean, median with 95%
    stratified-bootstrap CIs), the last evaluation if any, and the timings. Diverged
    seeds are listed and left out of every aggregate (their count is shown)."""
    final = final_returns(result)
    steps = int(result.metrics["env_steps"][0, -1])
    left_out = result.num_seeds - final.size
    rows = [
        ("environment", result.config.env_id),
        ("seeds", str(result.num_seeds) + (f" ({left_out} diverged, left out below)" if left_out else "")),
        ("env steps per seed", f"{steps:,}"),
    ]
    diverged = divergence(result)
    if diverged:
        rows.append(("diverged", diverged))
    if final.size == 0:
        rows.append(("final return", f"none: all {result.num_seeds} seeds diverged"))
    else:
        agg = stats.aggregate(final, reps=reps)
        rows += [
            ("final return: IQM [95% CI]", interval_text(agg["iqm"])),
            ("final return: mean [95% CI]", interval_text(agg["mean"])),
            ("final return: min / median / max",
             f"{final.min():.1f} / {np.median(final):.1f} / {final.max():.1f}"),
        ]
    for mode in ("greedy", "stochastic"):
        values = result.eval_metrics.get(f"eval_return_{mode}")
        if values is not None and values.shape[1] > 0 and final.size > 0:
            last = values[result.finite_seeds, -1]
            rows.append((f"last eval, {mode}: IQM [95% CI]", interval_text(stats.aggregate(last, reps=reps)["iqm"])))
    rows += [
        ("compile time", f"{result.compile_seconds:.1f} s"
                         + (" (loaded from the compile cache)" if result.compile_from_cache else "")),
        ("run time (compile excluded)", f"{result.run_seconds:.1f} s"),
        ("env steps / s (all seeds)", f"{result.env_steps_per_second:,.0f}"),
    ]
    return table(rows)


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def interval_text(interval) -> str:
    return f"{interval.point:.1f} [{interval.low:.1f}, {interval.high:.1f}]"


def results(result) -> dict:
    """config.json's "results": timings, diverged seeds, final returns of the others
    (statistics are null when every seed diverged; no NaN anywhere)."""
    final = final_returns(result)
    at = result.diverged_at
    number = lambda x: float(x) if np.isfinite(x) else None  # noqa: E731
    return {
        "compile_seconds": number(result.compile_seconds),
        "compile_from_cache": bool(result.compile_from_cache),
        "run_seconds": number(result.run_seconds),
        "env_steps_per_second": number(result.env_steps_per_second),
        "updates_done": int(result.metrics["env_steps"].shape[1]),
        "diverged": {
            "count": int((at >= 0).sum()), "of": result.num_seeds,
            "at_update": {str(i): int(at[i]) for i in np.flatnonzero(at >= 0)},  # seed -> update
        },
        "final_return": {
            "seeds": int(final.size),  # the seeds that did not diverge
            **{name: (float(f(final)) if final.size else None)
               for name, f in (("mean", np.mean), ("min", np.min), ("median", np.median), ("max", np.max))},
        },
    }
