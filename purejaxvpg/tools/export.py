"""Run directories in the formats the statistics tools of papers read.

rliable (Agarwal et al. 2021) takes `score_dict = {algorithm: scores}`, scores
[num_runs, num_tasks] of final scores or [num_runs, num_tasks, num_points] of curves.
`rliable_scores` builds exactly that dict (runs = seeds, tasks = environments, an algorithm
= a run's label); `write` saves it as an .npz keyed by algorithm, with a JSON sidecar naming
the task columns, the metric and the env steps of every point:

    with np.load("scores.npz") as data:
        score_dict = {name: data[name] for name in data.files}
    estimates, cis = rly.get_interval_estimates(score_dict, lambda s: np.array([metrics.aggregate_iqm(s)]))

`long_table` is the tidy table pandas and seaborn read: one row per (run, env_id, seed,
update, env_steps, metric, value), plus `diverged`. Long, not a column per metric, because
`sns.relplot(data=df, x="env_steps", y="value", hue="run", col="metric")` then plots any
metrics with no reshaping (a wide table needs `melt` first), and evaluations, taken at other
env steps than the updates, are rows of their own instead of columns empty on most rows.

Diverged seeds (non-finite metrics, or listed in config.json's results) stay in the table
with diverged=True; rliable's arrays cannot leave one run out of one task, so a run with
diverged seeds is refused there rather than averaged in.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from purejaxvpg.algo.metrics import EVAL_METRIC_NAMES, METRIC_NAMES
from purejaxvpg.host import rundir, runlock
from purejaxvpg.host.rundir import FINAL_PREFIX
from purejaxvpg.paths import writable_folder

FORMATS = ("rliable", "csv", "parquet")
AT = ("final", "all")
METRICS = tuple(n for n in METRIC_NAMES if n != "env_steps") + EVAL_METRIC_NAMES
COLUMNS = ("run", "env_id", "seed", "update", "env_steps", "metric", "value", "diverged")


@dataclasses.dataclass(frozen=True)
class Run:
    """A finished run directory. arrays: its metrics.npz (update metrics [num_seeds, num_updates],
    evaluations [num_seeds, num_evals], eval_env_steps [num_evals]); diverged: [num_seeds] bool."""

    label: str
    path: Path
    env_id: str
    eval_every: int
    arrays: dict
    diverged: np.ndarray

    @property
    def num_seeds(self) -> int:
        return self.arrays["env_steps"].shape[0]

    def series(self, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values [num_seeds, P], env_steps [num_seeds, P], update [P]) of one metric; P is
        num_updates, or for an evaluation metric the evaluations: the in-run ones (taken
        after update (k + 1) * eval_every - 1, counting updates from 0 as metrics.csv does),
        then the final one after the last update, unless the last in-run one is that one."""
        check_metrics([metric], allow_all=False)
        if metric not in EVAL_METRIC_NAMES:
            values = self.arrays.get(metric)
            if values is None or values.shape[-1] == 0:
                raise ValueError(f"metric: {self.path} has no {metric}.")
            return values, self.arrays["env_steps"], np.arange(values.shape[1])
        num_updates = self.arrays["env_steps"].shape[1]
        values = self.arrays.get(metric, np.zeros((self.num_seeds, 0), np.float32))
        update = (np.arange(values.shape[1]) + 1) * self.eval_every - 1
        steps = self.arrays["eval_env_steps"][: values.shape[1]] if values.shape[1] else np.zeros(0, np.int64)
        final = self.arrays.get(FINAL_PREFIX + metric)
        if final is not None and (update.size == 0 or update[-1] < num_updates - 1):
            values = np.concatenate([values, final[:, None]], axis=1)
            update = np.append(update, num_updates - 1)
            steps = np.append(steps, self.arrays["final_env_steps"])
        if values.shape[1] == 0:
            raise ValueError(f"metric: {self.path} has no {metric} (trained without evaluations: "
                             "eval_every 0 and final_eval off).")
        return values, np.broadcast_to(steps, values.shape), update

    def has(self, metric: str) -> bool:
        """Whether `series(metric)` has a point."""
        if metric in EVAL_METRIC_NAMES and FINAL_PREFIX + metric in self.arrays:
            return True
        return metric in self.arrays and self.arrays[metric].shape[-1] > 0


DEFAULT_METRIC = "eval_return_greedy"  # or, for runs without evaluations, episode_return


def default_metric(runs: list[Run], points: int = 1) -> str:
    """What a comparison reports when no --metric is given: the final greedy evaluation
    return when every run has evaluations (`points` of them or more: 2 for a curve), else
    the training episode return."""
    def enough(run: Run) -> bool:
        return run.has(DEFAULT_METRIC) and run.series(DEFAULT_METRIC)[0].shape[1] >= points

    return DEFAULT_METRIC if all(map(enough, runs)) else "episode_return"


def check_metrics(metrics, allow_all: bool = True) -> None:
    """Names of METRICS, or ["all"]."""
    if allow_all and list(metrics) == ["all"]:
        return
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        given = ", ".join(unknown) or "(none given)"
        raise ValueError(f"metric: unknown {given}; allowed: {', '.join(METRICS)} (or all).")


def resolve_metrics(metrics, runs: list[Run]) -> list[str]:
    """["all"] -> every metric that every run holds (evaluations only where all have them)."""
    if list(metrics) != ["all"]:
        return list(metrics)
    return [m for m in METRICS if all(run.has(m) for run in runs)]


def check_options(format: str, metrics, at: str) -> None:
    """Every option checked before a run directory is read."""
    if format not in FORMATS:
        raise ValueError(f"format: unknown {format!r}; allowed: {', '.join(FORMATS)}.")
    if at not in AT:
        raise ValueError(f"at: unknown {at!r}; allowed: {', '.join(AT)}.")
    check_metrics(metrics)
    if format == "rliable" and (len(metrics) != 1 or metrics == ["all"]):
        raise ValueError(f"metric: rliable scores are one metric; got {', '.join(metrics)}.")


def parse_run_arg(text: str) -> tuple[str | None, Path]:
    """'RUN_DIR' or 'LABEL=RUN_DIR' -> (label or None, path); a path that exists is never split."""
    if "=" in text and not Path(text).exists():
        label, path = text.split("=", 1)
        if label and path:
            return label, Path(path)
    return None, Path(text)


def load_run(path, label: str | None = None) -> Run:
    """A finished run directory; label defaults to the directory's name."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"run_dir: {path} does not exist.")
    config, _ = rundir.read_config(path)  # names a file, a directory with no run, a damaged one
    npz = path / "metrics.npz"
    if not npz.is_file():
        raise ValueError(f"run_dir: {path} has no metrics.npz yet: {_unfinished(path)}.")
    try:
        with np.load(npz) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"run_dir: {npz} is damaged ({type(error).__name__}: {error}).") from error
    if "env_steps" not in arrays:
        raise ValueError(f"run_dir: {npz} holds no env_steps (not written by purejaxvpg train).")
    return Run(label or path.absolute().name, path, config.env_id, config.eval_every, arrays,
               _diverged(path, arrays))


def load_runs(path, label: str | None = None) -> list[Run]:
    """A run directory as [Run]; a sweep's directory (`sweep --out`) as one Run per setting,
    labelled LABEL[setting] (LABEL: the directory's name by default), in the sweep's order."""
    path = Path(path)
    index = path / "sweep.json"
    if not index.is_file():
        return [load_run(path, label)]
    from purejaxvpg.tools.sweep import SETTINGS_DIR, setting_label

    try:
        record = json.loads(index.read_text())
        entries = sorted(record["settings"], key=lambda e: e["run_dir"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"run_dir: {index} is damaged or from a sweep that kept no curves "
                         f"({type(error).__name__}: {error}); rerun the sweep with --out.") from error
    base = label or path.absolute().name
    if not (path / SETTINGS_DIR).is_dir():
        raise ValueError(f"run_dir: {path} is a sweep without its {SETTINGS_DIR}/ folder of curves.")
    return [load_run(path / e["run_dir"], f"{base}[{setting_label(e['setting'])}]") for e in entries]


def load_arguments(items: list[str]) -> list[Run]:
    """The runs of the command line's [LABEL=]RUN_DIR arguments, a sweep's settings included."""
    return [run for label, path in map(parse_run_arg, items) for run in load_runs(path, label)]


def _unfinished(path: Path) -> str:
    """Why a run has no metrics.npz: a process still holds its lock, or it stopped early."""
    lock = path / runlock.LOCK_NAME
    if lock.is_file():
        with open(lock) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                pid = handle.read().strip() or "unknown"
                return f"it is still training (pid {pid}); export it once it ends"
    so_far = " (its metrics.csv holds the curve so far)" if (path / "metrics.csv").is_file() else ""
    return (f"it was interrupted or failed before the end{so_far}; finish it with "
            f"`purejaxvpg train --resume {path}`")


def _diverged(path: Path, arrays: dict) -> np.ndarray:
    """[num_seeds] bool: a non-finite value in any metric, or listed in config.json's results."""
    num_seeds = arrays["env_steps"].shape[0]
    bad = np.zeros(num_seeds, bool)
    for value in arrays.values():
        if value.ndim == 2 and value.shape[0] == num_seeds:
            bad |= ~np.isfinite(value).all(axis=1)
    results = rundir.read_info(path).get("results") or {}
    for seed in ((results.get("diverged") or {}).get("at_update") or {}):
        bad[int(seed)] = True
    return bad


def _by_label(runs: list[Run]) -> dict[str, dict[str, Run]]:
    """{label: {env_id: run}} in argument order; two runs of one label and env are refused."""
    grid: dict[str, dict[str, Run]] = {}
    for run in runs:
        other = grid.setdefault(run.label, {}).get(run.env_id)
        if other is not None:
            raise ValueError(
                f"run_dir: {other.path} and {run.path} are both '{run.label}' on {run.env_id}; "
                "label them apart as LABEL=RUN_DIR.")
        grid[run.label][run.env_id] = run
    return grid


def rliable_scores(runs: list[Run], metric: str = "episode_return",
                   at: str = "final") -> tuple[dict[str, np.ndarray], dict]:
    """(score_dict, info). score_dict: label -> [num_runs, num_tasks] (at="final": the last
    update's or evaluation's value) or [num_runs, num_tasks, num_points] (at="all"), float64;
    runs are the seeds, tasks the sorted env ids of all runs (info["tasks"]), so every label
    needs one run per task with the same number of seeds (and points)."""
    check_options("rliable", [metric], at)
    grid = _by_label(runs)
    tasks = sorted({run.env_id for run in runs})
    scores, steps = {}, {}
    for label, by_task in grid.items():
        missing = [t for t in tasks if t not in by_task]
        if missing:
            raise ValueError(
                f"rliable: '{label}' has no run of {', '.join(missing)} (tasks: {', '.join(tasks)}); every "
                "algorithm needs one run per task: give its runs one label, LABEL=RUN_DIR.")
        counts = {t: by_task[t].num_seeds for t in tasks}
        if len(set(counts.values())) > 1:
            raise ValueError(f"rliable: '{label}' has runs of different seed counts ({_listed(counts)}); "
                             "its [num_runs, num_tasks] array needs the same number of seeds for every task.")
        columns, steps[label] = [], {}
        for task in tasks:
            run = by_task[task]
            if run.diverged.any():
                raise ValueError(
                    f"rliable: seeds {np.flatnonzero(run.diverged).tolist()} of {run.path} diverged; rliable "
                    "would average them in. Export --format csv (diverged=True rows) or leave the run out.")
            values, env_steps, _ = run.series(metric)
            last = at == "final"
            columns.append(values[:, -1] if last else values)
            steps[label][task] = env_steps[0, -1].item() if last else env_steps[0].tolist()
        points = {t: len(s) for t, s in steps[label].items()} if not last else {}
        if len(set(points.values())) > 1:
            raise ValueError(f"rliable: '{label}' has curves of different lengths ({_listed(points)}); "
                             "export --at final, or runs of equal num_updates / num_evals.")
        scores[label] = np.stack(columns, axis=1).astype(np.float64)
    info = {"metric": metric, "at": at, "algorithms": list(scores), "tasks": tasks,
            "shape": ["num_runs", "num_tasks"] + ([] if at == "final" else ["num_points"]),
            "num_runs": {label: int(s.shape[0]) for label, s in scores.items()}, "env_steps": steps,
            "run_dirs": {label: {t: str(r.path) for t, r in row.items()} for label, row in grid.items()}}
    return scores, info


def _listed(counts: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items())


def long_table(runs: list[Run], metrics=("episode_return",), at: str = "all") -> dict[str, np.ndarray]:
    """The tidy table: COLUMNS -> [rows], one row per run, seed, point and metric (at="final":
    only each seed's last point of each metric). Values are float64 (float32 metrics exactly)."""
    check_options("csv", list(metrics), at)
    metrics = resolve_metrics(metrics, runs)
    _by_label(runs)
    parts = []
    for run in runs:
        for metric in metrics:
            values, env_steps, update = run.series(metric)
            if at == "final":
                values, env_steps, update = values[:, -1:], env_steps[:, -1:], update[-1:]
            seeds, points = values.shape
            parts.append({
                "run": np.full(seeds * points, run.label, dtype=object),
                "env_id": np.full(seeds * points, run.env_id, dtype=object),
                "seed": np.repeat(run.arrays.get("seed", np.arange(seeds)), points),  # global indices
                "update": np.tile(update, seeds).astype(np.int64),
                "env_steps": np.asarray(env_steps, np.int64).reshape(-1),
                "metric": np.full(seeds * points, metric, dtype=object),
                "value": values.astype(np.float64).reshape(-1),
                "diverged": np.repeat(run.diverged, points),
            })
    return {column: np.concatenate([part[column] for part in parts]) for column in COLUMNS}


def write_csv(table: dict[str, np.ndarray], handle) -> None:
    """The table as CSV (header COLUMNS) on a text handle; values with 9 significant digits,
    which give every float32 back exactly; NaN / inf as nan / inf (what pandas.read_csv reads)."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(COLUMNS)
    values = [f"{v:.9g}" for v in table["value"].tolist()]
    writer.writerows(zip(table["run"], table["env_id"], table["seed"].tolist(), table["update"].tolist(),
                         table["env_steps"].tolist(), table["metric"], values, table["diverged"].tolist()))


def parquet_library():
    """pandas, once pyarrow is known to be there too: the extra `[export]`."""
    try:
        import pandas
        import pyarrow  # noqa: F401
    except ImportError as error:
        raise ValueError(f"format: parquet needs pandas and pyarrow ({error.name} is missing); install them "
                         "with pip install 'purejaxvpg[export]', or use --format csv.") from error
    return pandas


def sidecar(path: Path) -> Path:
    return Path(path).with_suffix(".json")  # beside an rliable .npz: scores.npz -> scores.json


def check_out(out: Path, format: str, force: bool) -> None:
    """--out is refused before any work if it (or the rliable sidecar) exists, unless force."""
    if format == "rliable" and Path(out).suffix != ".npz":
        raise ValueError(f"out: rliable scores are an .npz (with a .json beside it); got {out}.")
    for path in [Path(out)] + ([sidecar(out)] if format == "rliable" else []):
        if path.is_dir():
            raise ValueError(f"out: {path} is a directory; give a file name.")
        if path.exists() and not force:
            raise ValueError(f"out: {path} exists; pass --force to replace it, or give another --out.")
    check_writable(Path(out))


def check_writable(out: Path) -> None:
    """ValueError naming --out unless a file can be created at `out` (paths.writable_folder
    of its folder). Checked before any work; a refusal leaves nothing behind."""
    writable_folder(Path(out).absolute().parent, "out", target=out)


def write(format: str, data, out: Path) -> list[Path]:
    """Write rliable's (score_dict, info) or the long table to `out` (+ the sidecar), each
    file whole or not at all (a temporary name, then renamed)."""
    out = Path(out)
    if format == "rliable":
        scores, info = data
        with _atomic(out) as handle:
            np.savez(handle, **scores)
        with _atomic(sidecar(out)) as handle:
            handle.write(rundir.json_text(info).encode())
        return [out, sidecar(out)]
    with _atomic(out) as handle:
        if format == "parquet":
            parquet_library().DataFrame({c: data[c] for c in COLUMNS}).to_parquet(handle, index=False)
        else:
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            write_csv(data, text)
            text.flush()
            text.detach()  # closing the file is _atomic's
    return [out]


@contextlib.contextmanager
def _atomic(path: Path):
    """A binary handle on path + '.tmp', renamed to path once written (removed on failure)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            yield handle
        tmp.replace(path)
    except OSError as error:  # named by what the user asked for, not the temporary name
        raise OSError(f"could not write {path}: {error.strerror or error}") from None
    finally:
        tmp.unlink(missing_ok=True)
