"""What a finished run reports on the terminal and in config.json's "results".

Diverged seeds are listed and left out of every aggregate, never averaged in.
"""

from __future__ import annotations

import numpy as np

from purejaxvpg.report import stats


def final_returns(result) -> np.ndarray:
    """The training episodic return at the last update of each seed that did not diverge
    (`result.finite_seeds`), [finite seeds]: diverged seeds never enter an aggregate."""
    return final_values(result, "episode_return")[result.finite_seeds]


DESCRIPTIONS = {
    "eval_return_greedy": "final greedy evaluation return (the mode; mean of eval_episodes episodes per seed, "
                          "after the last update)",
    "eval_return_stochastic": "final stochastic evaluation return (sampled actions; mean of eval_episodes "
                              "episodes per seed, after the last update)",
    "episode_return": "training episode return at the last update (mean of the episodes that ended in it)",
}

SHORT = {"eval_return_greedy": "final greedy eval return", "eval_return_stochastic": "final stochastic eval return",
         "episode_return": "final training return"}


def final_scores(result, metric: str | None = None) -> tuple[str, np.ndarray]:
    """(metric, [finite seeds]) of the number a run reports per seed (`final_values`), by
    default the final greedy evaluation return, or the training return when the run has no
    final evaluation (final_eval off). Diverged seeds are left out."""
    metric = metric or ("eval_return_greedy" if result.final_eval else "episode_return")
    return metric, final_values(result, metric)[result.finite_seeds]


def final_values(result, metric: str) -> np.ndarray:
    """Every seed's final `metric` [num_seeds], diverged ones included: an evaluation metric's
    value at the final evaluation, a training metric's at the last update. ValueError naming
    `metric` if the run does not have it."""
    if metric in result.final_eval:
        return result.final_eval[metric]
    if metric in result.metrics:
        return result.metrics[metric][:, -1]
    why = " (the run has no final evaluation: final_eval is off)" if metric.startswith("eval_") else ""
    raise ValueError(f"metric: {metric} is not a metric of this run{why}.")


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
    """The end-of-run table: the reported number (`final_scores`: the final greedy
    evaluation, else the training return) across seeds (IQM, mean, median with 95%
    stratified-bootstrap CIs), the other final numbers' IQMs, and the timings. Diverged
    seeds are listed and left out of every aggregate (their count is shown)."""
    metric, scores = final_scores(result)
    steps = int(result.metrics["env_steps"][0, -1])
    left_out = result.num_seeds - int(result.finite_seeds.sum())
    rows = [
        ("environment", result.config.env_id),
        ("seeds", str(result.num_seeds) + (f" ({left_out} diverged, left out below)" if left_out else "")),
        ("env steps per seed", f"{steps:,}"),
    ]
    diverged = divergence(result)
    if diverged:
        rows.append(("diverged", diverged))
    name = SHORT[metric]
    if scores.size == 0:
        rows.append((name, f"none: all {result.num_seeds} seeds diverged"))
    else:
        agg = stats.aggregate(scores, reps=reps)
        rows += [
            ("reported", f"{metric}: {DESCRIPTIONS[metric]}"),
            (f"{name}: IQM [95% CI]", interval_text(agg["iqm"])),
            (f"{name}: mean [95% CI]", interval_text(agg["mean"])),
            (f"{name}: min / median / max", f"{scores.min():.1f} / {np.median(scores):.1f} / {scores.max():.1f}"),
        ]
        for other in ("eval_return_stochastic", "episode_return"):
            if other != metric and (other in result.final_eval or other in result.metrics):
                rows.append((f"{SHORT[other]}: IQM [95% CI]",
                             interval_text(stats.aggregate(final_scores(result, other)[1], reps=reps)["iqm"])))
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
    """'point [low, high]': one decimal, three for numbers under 10 (returns of order 1,
    normalised scores), so an interval never reads [1.0, 1.0] when it is [0.962, 1.000]."""
    f = ".3f" if max(abs(interval.point), abs(interval.low), abs(interval.high)) < 10 else ".1f"
    return f"{interval.point:{f}} [{interval.low:{f}}, {interval.high:{f}}]"


def results(result) -> dict:
    """config.json's "results": timings, diverged seeds, and the final numbers of the
    others: "final" is the reported one (its "metric" says which), "final_return" the
    training return at the last update, "final_eval" the final evaluation's returns
    (absent without one). Statistics are null when every seed diverged; no NaN anywhere."""
    at = result.diverged_at
    number = lambda x: float(x) if np.isfinite(x) else None  # noqa: E731

    def described(values):
        return {"seeds": int(values.size),  # the seeds that did not diverge
                "iqm": number(stats.iqm(values)) if values.size else None,
                **{name: (number(f(values)) if values.size else None)
                   for name, f in (("mean", np.mean), ("min", np.min), ("median", np.median), ("max", np.max))}}

    metric, scores = final_scores(result)
    out = {
        "compile_seconds": number(result.compile_seconds),
        "compile_from_cache": bool(result.compile_from_cache),
        "run_seconds": number(result.run_seconds),
        "env_steps_per_second": number(result.env_steps_per_second),
        "updates_done": int(result.metrics["env_steps"].shape[1]),
        "diverged": {
            "count": int((at >= 0).sum()), "of": result.num_seeds,
            "at_update": {str(i): int(at[i]) for i in np.flatnonzero(at >= 0)},  # seed -> update
        },
        "final": {"metric": metric, "description": DESCRIPTIONS[metric], **described(scores)},
        "final_return": described(final_returns(result)),
    }
    if result.final_eval:
        out["final_eval"] = {name: described(final_scores(result, name)[1])
                             for name in ("eval_return_greedy", "eval_return_stochastic")}
    return out
