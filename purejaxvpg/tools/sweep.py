"""Sweeps in one call: settings of the numeric hyperparameters x seeds, vmapped together.

Every setting runs the same seeds (seed j of every setting gets the same key), so
settings are compared on common random numbers. The whole grid is one jitted call
(chunked over runs only when it would not fit in device memory).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
import types
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from purejaxvpg.algo.metrics import EVAL_METRIC_NAMES, METRIC_NAMES
from purejaxvpg.algo.prng import seed_keys
from purejaxvpg.algo.program import HyperParams
from purejaxvpg.config import SWEEPABLE, Config, check_hyperparameter
from purejaxvpg.host import rundir
from purejaxvpg.host.chunks import train
from purejaxvpg.host.driver import TrainResult
from purejaxvpg.paths import not_under_a_file
from purejaxvpg.report import stats, summary

INTEGER = ("value_iters",)


def _number(name: str, text: str, what: str = "value") -> float:
    """A finite float from `text`, or a ValueError naming the hyperparameter."""
    try:
        number = float(text)
    except ValueError as error:
        raise ValueError(f"sweep: {name} {what} {text.strip()!r} is not a number.") from error
    if not math.isfinite(number):
        raise ValueError(f"sweep: {name} {what} must be a finite number, got {text.strip()!r}.")
    return number


def _value(name: str, text: str):
    number = _number(name, text)
    if name in INTEGER:
        if number != int(number):
            raise ValueError(f"sweep: {name} must be an integer, got {text!r}.")
        return int(number)
    return number


def _name(text: str) -> str:
    name = text.strip().replace("-", "_")
    if name not in SWEEPABLE:
        raise ValueError(f"sweep: {text!r} cannot be swept; allowed: {', '.join(SWEEPABLE)}.")
    return name


def _once(seen: dict, name: str, flag: str) -> None:
    """A hyperparameter given twice would silently replace the first: refuse it."""
    if name in seen:
        form = "V1,V2,..." if flag == "--grid" else "LOW:HIGH[:log]"
        raise ValueError(f"sweep: {flag} {name} is given twice; give it once ({flag} {name}={form}).")


def parse_grid(items: list[str]) -> dict[str, list]:
    """["policy_lr=1e-3,3e-3", "gamma=0.99"] -> {"policy_lr": [0.001, 0.003], "gamma": [0.99]}."""
    grid = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"sweep: --grid expects NAME=V1,V2,..., got {item!r}.")
        name, values = item.split("=", 1)
        name = _name(name)
        _once(grid, name, "--grid")
        grid[name] = [_value(name, v) for v in values.split(",") if v.strip()]
        if not grid[name]:
            raise ValueError(f"sweep: --grid {name} has no values.")
        for value in grid[name]:  # its range, before the sweep is counted or announced
            check_hyperparameter(name, value, f"sweep: --grid {name}")
    return grid


def parse_ranges(items: list[str]) -> dict[str, tuple[float, float, bool]]:
    """["policy_lr=1e-4:1e-2:log"] -> {"policy_lr": (1e-4, 1e-2, True)} (True: log-uniform)."""
    ranges = {}
    for item in items:
        name, _, spec = item.partition("=")
        parts = spec.split(":")
        if not spec or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise ValueError(f"sweep: --range expects NAME=LOW:HIGH[:log], got {item!r}.")
        name = _name(name)
        _once(ranges, name, "--range")
        low, high = _number(name, parts[0], "low"), _number(name, parts[1], "high")
        log = len(parts) == 3
        if not low <= high or (log and low <= 0):
            raise ValueError(f"sweep: --range {name} needs low <= high (and low > 0 for log), got {item!r}.")
        for bound in (low, high):  # a sampled value lies between them: both in the field's range
            check_hyperparameter(name, int(round(bound)) if name in INTEGER else bound, f"sweep: --range {name}")
        ranges[name] = (low, high, log)
    return ranges


def _check(config: Config, setting: dict) -> dict:
    """Each setting is validated like a Config, before anything compiles."""
    dataclasses.replace(config, **setting).validate()
    return setting


# copies of every run's per-update metrics the host holds at once (the device's result, the
# chunks joined, the summaries' views): what a sweep's size is checked against
HOST_COPIES = 3


def check_size(config: Config, settings: int, num_seeds: int) -> int:
    """settings x seeds runs, counted before any setting is built: ValueError naming the
    sweep's size when every run's per-update metrics would not fit in this process's host
    memory (memory.host_limits); else the number of runs."""
    from purejaxvpg.host import memory

    runs = settings * num_seeds
    per_run = (config.num_updates * len(METRIC_NAMES) + config.num_evals * len(EVAL_METRIC_NAMES)) * 4
    need, limits = runs * per_run * HOST_COPIES, memory.host_limits()
    if need > min(limits.values()):
        raise ValueError(
            f"sweep: {settings:,} settings x {num_seeds} seeds = {runs:,} runs would hold about {memory.size(need)} "
            f"of per-update metrics on the host ({config.num_updates} updates each), more than the "
            f"{memory.size(min(limits.values()))} this process can allocate; sweep fewer settings "
            "(--samples, --grid) or seeds."
        )
    return runs


PROGRESS_EVERY = 10_000  # settings checked between two on_progress calls (~0.6 s on a CPU)


def _checked(config: Config, settings, total: int, on_progress) -> list[dict]:
    """Each of `total` settings validated (~60 us each); on_progress(done, total) every
    PROGRESS_EVERY settings and at the end."""
    out = []
    for done, setting in enumerate(settings, 1):
        out.append(_check(config, setting))
        if on_progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
            on_progress(done, total)
    return out


def grid_settings(config: Config, grid: dict[str, list], on_progress=None) -> list[dict]:
    """The product of the grid's values, each a {name: value} dict."""
    names = list(grid)
    total = math.prod(len(values) for values in grid.values())
    return _checked(config, (dict(zip(names, values)) for values in itertools.product(*grid.values())),
                    total, on_progress)


def random_settings(config: Config, ranges: dict, samples: int, seed: int = 0, on_progress=None) -> list[dict]:
    """`samples` settings drawn uniformly (or log-uniformly) from the ranges."""
    if samples < 1:
        raise ValueError(f"samples: must be an integer >= 1 with --range, got {samples}.")
    rng = np.random.default_rng(seed)

    def draw():
        for _ in range(samples):
            setting = {}
            for name, (low, high, log) in ranges.items():
                x = math.exp(rng.uniform(math.log(low), math.log(high))) if log else rng.uniform(low, high)
                setting[name] = int(round(x)) if name in INTEGER else float(x)
            yield setting

    return _checked(config, draw(), samples, on_progress)


@dataclasses.dataclass(frozen=True)
class SweepResult:
    config: Config
    settings: list[dict]
    num_seeds: int
    final_scores: np.ndarray  # [num_settings, num_seeds]: each run's final `metric`
    diverged_at: np.ndarray  # [num_settings, num_seeds], first non-finite update, -1: finite
    summaries: list[dict]  # per setting: name -> stats.Interval over its finite runs; {} if none
    result: TrainResult  # runs in order setting-major: run i = setting i // S, seed i % S
    seed: int = 0  # the base seed: seed j of every setting is seed_keys(seed, S)[j]
    rank_by: str = "final"  # "final": the IQM of the final scores; "auc": of each run's mean return
    metric: str = "episode_return"  # what final_scores hold (summary.final_scores)

    def ranking(self) -> list[int]:
        """Setting indices, best first by `rank_by`; settings whose every run diverged last."""
        if self.rank_by == "auc":
            scores = self.areas()
            return sorted(range(len(self.settings)), key=lambda i: -scores[i] if np.isfinite(scores[i]) else math.inf)
        return sorted(range(len(self.settings)),
                      key=lambda i: -self.summaries[i]["iqm"].point if self.summaries[i] else math.inf)

    def areas(self) -> np.ndarray:
        """Per setting, the IQM over its finite runs of each run's mean episode return over all
        updates (the area under its learning curve per update); NaN if every run diverged."""
        G, S = len(self.settings), self.num_seeds
        mean_return = self.result.metrics["episode_return"].reshape(G, S, -1).mean(axis=-1)
        return np.array([stats.iqm(m[d < 0]) if (d < 0).any() else np.nan
                         for m, d in zip(mean_return, self.diverged_at)])

    def table(self) -> str:
        names = list(self.settings[0])
        header = ["rank", *names, "IQM [95% CI]", "mean [95% CI]", "median", "diverged"]
        rows = []
        for rank, i in enumerate(self.ranking(), 1):
            s = self.summaries[i]
            rows.append([
                str(rank), *(f"{self.settings[i][n]:.4g}" for n in names),
                *((f"{s['iqm'].point:.1f} [{s['iqm'].low:.1f}, {s['iqm'].high:.1f}]",
                   f"{s['mean'].point:.1f} [{s['mean'].low:.1f}, {s['mean'].high:.1f}]",
                   f"{s['median'].point:.1f}") if s else ("-", "-", "-")),
                f"{int((self.diverged_at[i] >= 0).sum())}/{self.num_seeds}",
            ])
        widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
        line = lambda r: "  ".join(c.rjust(w) for c, w in zip(r, widths))  # noqa: E731
        r = self.result
        diverged = int((self.diverged_at >= 0).sum())
        footer = (
            f"{self.config.env_id}: {len(self.settings)} settings x {self.num_seeds} seeds, "
            f"statistics of each run's {summary.SHORT[self.metric]} ({self.metric}); ranked by "
            + ("the IQM of each run's mean training return over all updates (--rank auc)" if self.rank_by == "auc"
               else "their IQM")
            + f"; compile {r.compile_seconds:.1f} s, run {r.run_seconds:.1f} s"
            + (f"\n{diverged} of {self.diverged_at.size} runs diverged (non-finite metrics or "
               "parameters) and are left out of their setting's statistics" if diverged else "")
        )
        return "\n".join([line(header), *(line(r) for r in rows), footer])

    def hyperparameters(self, i: int) -> dict:
        """Every swept hyperparameter of setting i: the setting's own values, the config's
        for the others."""
        return {name: self.settings[i].get(name, getattr(self.config, name)) for name in SWEEPABLE}

    def write(self, out: Path) -> list[Path]:
        """OUT/sweep.json (everything, every run's final return) and OUT/sweep.csv (one row
        per setting, best first: its hyperparameters and statistics). Non-finite numbers
        are written as null / an empty cell."""
        out = Path(out)
        check_new_out(out)
        out.mkdir(parents=True, exist_ok=True)
        areas = self.areas() if self.rank_by == "auc" else None
        record = {
            "config": dataclasses.asdict(self.config),
            "num_seeds": self.num_seeds,
            "compile_seconds": self.result.compile_seconds,
            "run_seconds": self.result.run_seconds,
            "seed": self.seed,
            "ranked_by": self.rank_by,
            "metric": self.metric,  # what final_scores and the statistics are of
            "settings": [
                {"setting": self.settings[i],
                 "run_dir": str(Path(SETTINGS_DIR) / setting_name(i)),
                 "final_scores": self.final_scores[i].tolist(),
                 "diverged_at_update": self.diverged_at[i].tolist(),  # per seed, -1: finite
                 **{k: dataclasses.asdict(v) for k, v in self.summaries[i].items()},
                 **({"auc_iqm": rundir.finite(float(areas[i]))} if areas is not None else {})}
                for i in self.ranking()
            ],
        }
        json_path = out / "sweep.json"
        with open(json_path, "x") as handle:  # "x": another sweep's file is never replaced
            handle.write(rundir.json_text(record))

        stat_names = ("iqm", "mean", "median")
        header = ["rank", *SWEEPABLE, "seeds", "diverged",
                  *(f"{n}{end}" for n in stat_names for end in ("", "_low", "_high"))]
        csv_path = out / "sweep.csv"
        with open(csv_path, "x", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for rank, i in enumerate(self.ranking(), 1):
                s = self.summaries[i]
                cells = [getattr(s[n], f) if s else "" for n in stat_names for f in ("point", "low", "high")]
                writer.writerow([rank, *self.hyperparameters(i).values(), self.num_seeds,
                                 int((self.diverged_at[i] >= 0).sum()), *cells])
        self.write_settings(out)  # after the summaries: the ranked results are on disk first
        return [json_path, csv_path, out / SETTINGS_DIR]

    def write_settings(self, out: Path) -> None:
        """OUT/settings/NNN/: each setting as a run directory (config.json with the setting's
        hyperparameters, metrics.npz, metrics.csv), so plot, compare and export read a sweep's
        curves and evaluations as they read runs (export.load_runs)."""
        S = self.num_seeds
        for i, setting in enumerate(self.settings):
            where = Path(out) / SETTINGS_DIR / setting_name(i)
            where.mkdir(parents=True)
            rows = slice(i * S, (i + 1) * S)
            part = types.SimpleNamespace(
                metrics={k: v[rows] for k, v in self.result.metrics.items()},
                eval_metrics={k: v[rows] for k, v in self.result.eval_metrics.items()},
                eval_env_steps=self.result.eval_env_steps,
                final_eval={k: v[rows] for k, v in self.result.final_eval.items()},
                config=dataclasses.replace(self.config, **setting))
            config = part.config
            rundir.write_config(where, config, {"num_seeds": S, "seed": self.seed, "sweep_setting": i,
                                                "setting": setting})
            diverged = {str(j): int(u) for j, u in enumerate(self.diverged_at[i]) if u >= 0}
            rundir.write_results(where, {"diverged": {"count": len(diverged), "of": S, "at_update": diverged}})
            rundir.write_metrics(where, part)


SWEEP_FILES = ("sweep.json", "sweep.csv")
SETTINGS_DIR = "settings"


def setting_name(i: int) -> str:
    """The folder of setting i (its index in the sweep, not its rank) under OUT/settings/."""
    return f"{i:03d}"


def setting_label(setting: dict) -> str:
    """'policy_lr=0.001,value_lr=0.003': a setting as plot's and compare's legends name it."""
    return ",".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in setting.items())


def check_new_out(out, name: str = "out") -> None:
    """ValueError naming `name` when `out` already holds a sweep's files: an earlier sweep's
    results are never replaced (as `train --out` never replaces a run), or when it is, or
    lies under, a file. Writes nothing."""
    not_under_a_file(out, name)
    held = [f for f in (*SWEEP_FILES, SETTINGS_DIR) if (Path(out) / f).exists()]
    if held:
        raise ValueError(f"{name}: {out} already holds a sweep ({', '.join(held)}); pass another --out, "
                         "or move those files away first.")


def check_metric(config: Config, metric: str | None) -> None:
    """ValueError naming `metric` unless the runs of `config` will have it (None: the default)."""
    if metric is None:
        return
    if metric not in METRIC_NAMES + EVAL_METRIC_NAMES or metric == "env_steps":
        allowed = [m for m in METRIC_NAMES + EVAL_METRIC_NAMES if m != "env_steps"]
        raise ValueError(f"metric: unknown {metric!r}; allowed: {', '.join(allowed)}.")
    if metric in EVAL_METRIC_NAMES and not config.final_eval:
        raise ValueError(f"metric: {metric} needs the final evaluation, which final_eval = False turns off.")


def run(config: Config, settings: list[dict], num_seeds: int = 8, seed: int = 0,
        reps: int = 2000, devices=None, chunk_size: int | None = None, on_chunk=None,
        rank_by: str = "final", metric: str | None = None) -> SweepResult:
    """Train every setting x seed in one jitted, vmapped call and summarise each setting.
    A run that diverges (non-finite metrics or parameters) is left out of its setting's
    statistics and counted in `diverged_at`. `devices`, `chunk_size`, `on_chunk`
    (chunks.train): the settings x seeds axis is split over those devices (None: every
    device), in calls of chunk_size runs (None: as many as fit). `metric`: what settings are
    summarised and ranked by, each run's final value of it (summary.final_scores; default: the
    final greedy evaluation, or the training return with final_eval off)."""
    G, S = len(settings), num_seeds
    base = HyperParams.from_config(config)
    columns = {
        name: jnp.repeat(jnp.asarray([st.get(name, getattr(base, name)) for st in settings]), S)
        for name in SWEEPABLE  # a greedy end no setting names: the config's (the driver fills it in)
        if not name.startswith("greedy_") or any(name in st for st in settings)
    }
    keys = jnp.tile(seed_keys(seed, S), G)  # seed j of every setting: the same key
    result = train(config, keys=keys, hparams=HyperParams(**columns), devices=devices, chunk_size=chunk_size,
                   on_chunk=on_chunk)
    metric = metric or summary.final_scores(result)[0]
    final = summary.final_values(result, metric).reshape(G, S)
    diverged_at = result.diverged_at.reshape(G, S)
    return SweepResult(config, settings, S, final, diverged_at, summarize(final, diverged_at, reps), result,
                       seed=seed, rank_by=rank_by, metric=metric)



def summarize(final: np.ndarray, diverged_at: np.ndarray, reps: int = 2000) -> list[dict]:
    """Per setting (row of final [settings, seeds]), stats.aggregate of the runs that did not
    diverge (diverged_at < 0); {} for a setting whose every run diverged."""
    return [stats.aggregate(f[d < 0], reps=reps) if (d < 0).any() else {} for f, d in zip(final, diverged_at)]
