"""Sweeps in one call: settings of the numeric hyperparameters x seeds, vmapped together.

Every setting runs the same seeds (seed j of every setting gets the same key), so
settings are compared on common random numbers. The whole grid is one jitted call
(chunked over runs only when it would not fit in device memory).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from purejaxvpg import stats
from purejaxvpg.config import SWEEPABLE, Config
from purejaxvpg.train import HyperParams, TrainResult, seed_keys, train

INTEGER = ("value_iters",)


def _value(name: str, text: str):
    try:
        number = float(text)
    except ValueError as error:
        raise ValueError(f"sweep: {name} value {text!r} is not a number.") from error
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


def parse_grid(items: list[str]) -> dict[str, list]:
    """["policy_lr=1e-3,3e-3", "gamma=0.99"] -> {"policy_lr": [0.001, 0.003], "gamma": [0.99]}."""
    grid = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"sweep: --grid expects NAME=V1,V2,..., got {item!r}.")
        name, values = item.split("=", 1)
        name = _name(name)
        grid[name] = [_value(name, v) for v in values.split(",") if v.strip()]
        if not grid[name]:
            raise ValueError(f"sweep: --grid {name} has no values.")
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
        low, high = float(parts[0]), float(parts[1])
        log = len(parts) == 3
        if not low <= high or (log and low <= 0):
            raise ValueError(f"sweep: --range {name} needs low <= high (and low > 0 for log), got {item!r}.")
        ranges[name] = (low, high, log)
    return ranges


def _check(config: Config, setting: dict) -> dict:
    """Each setting is validated like a Config, before anything compiles."""
    dataclasses.replace(config, **setting).validate()
    return setting


def grid_settings(config: Config, grid: dict[str, list]) -> list[dict]:
    """The product of the grid's values, each a {name: value} dict."""
    names = list(grid)
    return [_check(config, dict(zip(names, values))) for values in itertools.product(*grid.values())]


def random_settings(config: Config, ranges: dict, samples: int, seed: int = 0) -> list[dict]:
    """`samples` settings drawn uniformly (or log-uniformly) from the ranges."""
    if samples < 1:
        raise ValueError(f"samples: must be an integer >= 1 with --range, got {samples}.")
    rng = np.random.default_rng(seed)
    settings = []
    for _ in range(samples):
        setting = {}
        for name, (low, high, log) in ranges.items():
            x = math.exp(rng.uniform(math.log(low), math.log(high))) if log else rng.uniform(low, high)
            setting[name] = int(round(x)) if name in INTEGER else float(x)
        settings.append(_check(config, setting))
    return settings


@dataclasses.dataclass(frozen=True)
class SweepResult:
    config: Config
    settings: list[dict]
    num_seeds: int
    final_returns: np.ndarray  # [num_settings, num_seeds], return at the last update
    summaries: list[dict]  # per setting: name -> stats.Interval
    result: TrainResult  # runs in order setting-major: run i = setting i // S, seed i % S

    def ranking(self) -> list[int]:
        """Setting indices, best IQM first."""
        return sorted(range(len(self.settings)), key=lambda i: -self.summaries[i]["iqm"].point)

    def table(self) -> str:
        names = list(self.settings[0])
        header = ["rank", *names, "IQM [95% CI]", "mean [95% CI]", "median"]
        rows = []
        for rank, i in enumerate(self.ranking(), 1):
            s = self.summaries[i]
            rows.append([
                str(rank), *(f"{self.settings[i][n]:.4g}" for n in names),
                f"{s['iqm'].point:.1f} [{s['iqm'].low:.1f}, {s['iqm'].high:.1f}]",
                f"{s['mean'].point:.1f} [{s['mean'].low:.1f}, {s['mean'].high:.1f}]",
                f"{s['median'].point:.1f}",
            ])
        widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
        line = lambda r: "  ".join(c.rjust(w) for c, w in zip(r, widths))  # noqa: E731
        r = self.result
        footer = (
            f"{self.config.env_id}: {len(self.settings)} settings x {self.num_seeds} seeds, "
            f"final-update return; compile {r.compile_seconds:.1f} s, run {r.run_seconds:.1f} s"
        )
        return "\n".join([line(header), *(line(r) for r in rows), footer])

    def write(self, out: Path) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        record = {
            "config": dataclasses.asdict(self.config),
            "num_seeds": self.num_seeds,
            "compile_seconds": self.result.compile_seconds,
            "run_seconds": self.result.run_seconds,
            "settings": [
                {"setting": self.settings[i],
                 "final_returns": self.final_returns[i].tolist(),
                 **{k: dataclasses.asdict(v) for k, v in self.summaries[i].items()}}
                for i in self.ranking()
            ],
        }
        path = out / "sweep.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        return path


def run(config: Config, settings: list[dict], num_seeds: int = 8, seed: int = 0,
        reps: int = 2000) -> SweepResult:
    """Train every setting x seed in one jitted, vmapped call and summarise each setting."""
    G, S = len(settings), num_seeds
    base = HyperParams.from_config(config)
    columns = {
        name: jnp.repeat(jnp.asarray([st.get(name, getattr(base, name)) for st in settings]), S)
        for name in SWEEPABLE
    }
    keys = jnp.tile(seed_keys(seed, S), G)  # seed j of every setting: the same key
    result = train(config, keys=keys, hparams=HyperParams(**columns))
    final = result.metrics["episode_return"][:, -1].reshape(G, S)
    summaries = [stats.aggregate(final[i], reps=reps) for i in range(G)]
    return SweepResult(config, settings, S, final, summaries, result)
