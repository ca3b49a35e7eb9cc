"""The run directory: everything a reviewer needs to rerun and check a number.

RUN_DIR/config.json          the purejaxvpg version, the Config, the run options, package versions, backend,
                             device, git commit, the code version (provenance.code_version: what
                             `purejaxvpg merge` compares); after the run, timings and final
                             returns; one entry in "resumes" per --resume (its own versions,
                             commit, code version); in a merged run, "merged": the runs merged
RUN_DIR/metrics.csv          one row per seed and update: seed (its global index,
                             seed_start + i), update, env_steps, every metric;
                             appended block by block while training (a killed run keeps its
                             curve), rewritten whole, seed by seed, when the run ends
RUN_DIR/metrics.npz          the same arrays [num_seeds, num_updates], plus evaluations
                             [num_seeds, num_evals] and their env steps, and `seed` [num_seeds]:
                             the global seed indices; with final_eval, the final evaluation
                             final_<name> [num_seeds] (final_eval_return_greedy, ...) at
                             final_env_steps (a scalar: every seed's steps after the last update)
RUN_DIR/learning_curve.png   IQM of the episodic return across seeds with a 95% bootstrap band
RUN_DIR/checkpoints/         orbax checkpoints (see checkpoint.py)
RUN_DIR/chunks/              a run of more seeds than fit at once: one sub-run per chunk of seeds
                             (seed_ranges.py), joined into this directory at the end
RUN_DIR/tensorboard/, wandb-run-id   with `--log tensorboard` / `--log wandb` (loggers.py)
RUN_DIR/.purejaxvpg.lock     held (fcntl.flock) by the one process using the directory (runlock.py)

Every file is written to a temporary name and renamed, so a killed process leaves either
the old file or the new one, never half of one (metrics.csv while it grows may end in half
a row: --resume drops it with the rows after the checkpoint). JSON holds no NaN or inf (not JSON): they
are written as null (`write_json`).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import io
import json
import math
import os
from pathlib import Path

import jax
import numpy as np

from purejaxvpg.algo.metrics import METRIC_NAMES
from purejaxvpg.config import Config
from purejaxvpg.host.provenance import code_version
from purejaxvpg.report import plots
from purejaxvpg.version import __version__

FINAL_PREFIX = "final_"  # metrics.npz: final_eval_return_greedy, ... (the final evaluation)
PACKAGES = ("purejaxvpg", "jax", "jaxlib", "flax", "optax", "chex", "gymnax", "orbax-checkpoint", "numpy")
# what makes a directory a run: a fresh run refuses a directory holding any of these
RUN_FILES = ("config.json", "checkpoints", "metrics.csv", "metrics.npz", "learning_curve.png", "eval.json",
             "chunks")


def environment() -> dict:
    """Package versions, backend, devices, the git commit of the source tree and the code
    version (provenance.code_version: versions and a digest of the source)."""
    versions, code = {}, code_version()
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "versions": versions,
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),  # >1: a jax.distributed run over several processes
        "git_commit": code["git_commit"],
        "code": code,
    }


def finite(value):
    """`value` with every non-finite float replaced by None and numpy scalars/arrays made
    plain Python: what `json.dumps(..., allow_nan=False)` accepts."""
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(value) -> str:
    """Indented JSON of `value` with NaN / inf written as null (strict JSON)."""
    return json.dumps(finite(value), indent=2, allow_nan=False) + "\n"


def write_json(path: str | Path, value) -> Path:
    """Atomically write `json_text(value)` to `path` (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json_text(value))
    tmp.replace(path)
    return path


def write_config(run_dir: Path, config: Config, run: dict) -> Path:
    """config.json of a fresh run: the purejaxvpg version, the Config, the run options, the
    environment."""
    return write_json(Path(run_dir) / "config.json", {"version": __version__, "config": dataclasses.asdict(config),
                                                      "run": run, **environment()})


def update_config(run_dir: Path, change) -> Path:
    """Rewrite config.json with `change(info)` applied to what it holds."""
    info = read_info(run_dir)
    change(info)
    return write_json(Path(run_dir) / "config.json", info)


def write_results(run_dir: Path, results: dict) -> Path:
    """Set config.json's "results" (timings, final returns), keeping everything else."""
    return update_config(run_dir, lambda info: info.__setitem__("results", results))


def record_resume(run_dir: Path, from_update: int, changed: dict | None = None) -> Path:
    """Append to config.json's "resumes" the resuming environment (versions, commit,
    device), the time and the update resumed from; the run's own record stays as written."""
    entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "from_update": from_update, **({"changed": changed} if changed else {}), **environment()}
    return update_config(run_dir, lambda info: info.setdefault("resumes", []).append(entry))


def read_info(run_dir: Path) -> dict:
    """The whole of an existing run's config.json (versions, results, resumes, ...); read
    after `read_config` has checked it."""
    return json.loads((Path(run_dir) / "config.json").read_text())


def read_config(run_dir: Path) -> tuple[Config, dict]:
    """(Config, run options) of an existing run directory."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"run_dir: {run_dir} is a file, not a run directory.")
    path = run_dir / "config.json"
    if not path.is_file():
        raise ValueError(f"run_dir: {run_dir} has no config.json (not a purejaxvpg run directory).")
    try:
        info = json.loads(path.read_text())
        return Config.from_dict(info["config"]), info.get("run", {})
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"run_dir: {path} is damaged ({type(error).__name__}: {error}).") from error


def held_run_files(run_dir: Path) -> list[str]:
    """The names in RUN_FILES that `run_dir` holds (empty when it is no run)."""
    return [name for name in RUN_FILES if (Path(run_dir) / name).exists()]


def check_new_run_dir(run_dir: Path, name: str = "out") -> None:
    """ValueError naming `name` unless `run_dir` can become a fresh run directory: not a
    file, not under a file, not holding another run, writable. Writes nothing."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"{name}: {run_dir} is a file; give a directory for the run.")
    held = held_run_files(run_dir) if run_dir.is_dir() else []
    if held:
        # without config.json there is nothing --resume could read: only another --out helps
        resume = f"continue it with --resume {run_dir}, or " if "config.json" in held else (
            "it has no config.json, so it cannot be resumed; delete it or "
        )
        raise ValueError(
            f"{name}: {run_dir} already holds a run ({', '.join(held)}); {resume}"
            "pick another --out (nothing was written)."
        )
    existing = run_dir.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{name}: cannot create {run_dir}: {existing} is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{name}: cannot write to {existing} (permission denied or read-only).")


def write_metrics(run_dir: Path, result, seed_start: int = 0) -> list[Path]:
    """metrics.npz, then metrics.csv of a run whose seeds are seed_start.. (each written
    whole or not at all; a failed write is an OSError naming the file, its temporary file
    removed)."""
    try:
        return _write_metrics(Path(run_dir), result, seed_start)
    except OSError as error:
        for tmp in Path(run_dir).glob("metrics.*.tmp"):
            tmp.unlink(missing_ok=True)
        raise OSError(f"could not write the metrics into {run_dir}: {error.strerror or error}") from error


def _write_metrics(run_dir: Path, result, seed_start: int) -> list[Path]:
    m = result.metrics
    npz_path = Path(run_dir) / "metrics.npz"
    arrays = dict(m, seed=seed_start + np.arange(m["env_steps"].shape[0]))
    arrays.update(result.eval_metrics)
    if result.eval_metrics:
        arrays["eval_env_steps"] = result.eval_env_steps[: next(iter(result.eval_metrics.values())).shape[1]]
    if result.final_eval:
        arrays.update({FINAL_PREFIX + name: value for name, value in result.final_eval.items()})
        arrays["final_env_steps"] = np.int64(result.config.num_updates * result.config.batch_size)
    tmp = npz_path.with_name(npz_path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    tmp.replace(npz_path)

    csv_path = Path(run_dir) / "metrics.csv"
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    tmp.write_text(csv_header(m) + csv_rows(m, first_seed=seed_start))
    tmp.replace(csv_path)
    return [csv_path, npz_path]


def _csv_names(metrics: dict) -> list[str]:
    return [n for n in METRIC_NAMES if n in metrics and n != "env_steps"]


def csv_header(metrics: dict) -> str:
    """The first line of metrics.csv: seed, update, env_steps, then every other metric."""
    return ",".join(["seed", "update", "env_steps", *_csv_names(metrics)]) + "\n"


def csv_rows(metrics: dict, first_update: int = 0, first_seed: int = 0) -> str:
    """metrics.csv lines of name -> [num_seeds, updates] (seed by seed, update by update;
    updates numbered from first_update, seeds from first_seed: the run's seed_start). A
    session appends each block's lines as it finishes (host/loggers.py) and the end of a
    run rewrites the file whole: same text."""
    names = _csv_names(metrics)
    num_seeds, num_updates = metrics["env_steps"].shape
    seed = np.repeat(np.arange(first_seed, first_seed + num_seeds), num_updates)
    update = np.tile(np.arange(first_update, first_update + num_updates), num_seeds)
    columns = [seed, update, metrics["env_steps"].reshape(-1)] + [metrics[n].reshape(-1) for n in names]
    table = np.column_stack([c.astype(np.float64) for c in columns])
    formats = ["%d", "%d", "%d"] + ["%d" if metrics[n].dtype.kind in "iu" else "%.7g" for n in names]
    text = io.StringIO()
    np.savetxt(text, table, fmt=formats, delimiter=",")
    return text.getvalue()


def write_plot(run_dir: Path, result) -> Path:
    """learning_curve.png: written last, after the numbers are safe."""
    m = result.metrics
    return plots.learning_curve(
        m["env_steps"][0], m["episode_return"], Path(run_dir) / "learning_curve.png",
        title=f"{result.config.env_id}: VPG, {m['env_steps'].shape[0]} seeds",
        exclude=~result.finite_seeds,  # diverged seeds are left out (and counted)
    )
