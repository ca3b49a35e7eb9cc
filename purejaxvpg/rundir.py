"""The run directory: everything a reviewer needs to rerun and check a number.

RUN_DIR/config.json          the Config, the run options, package versions, backend,
                             device, git commit; after the run, timings and final returns
RUN_DIR/metrics.csv          one row per seed and update: seed, update, env_steps, every metric
RUN_DIR/metrics.npz          the same arrays [num_seeds, num_updates], plus evaluations
                             [num_seeds, num_evals] and their env steps
RUN_DIR/learning_curve.png   IQM of the episodic return across seeds with a 95% bootstrap band
RUN_DIR/checkpoints/         orbax checkpoints (see checkpoint.py)
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import subprocess
from pathlib import Path

import jax
import numpy as np

from purejaxvpg import plots
from purejaxvpg.config import Config
from purejaxvpg.train import METRIC_NAMES

PACKAGES = ("purejaxvpg", "jax", "jaxlib", "flax", "optax", "chex", "gymnax", "orbax-checkpoint", "numpy")


def environment() -> dict:
    """Package versions, backend, devices and the git commit of the source tree."""
    versions = {}
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
        "git_commit": git_commit(),
    }


def git_commit() -> str | None:
    """HEAD of the repository this package runs from (+ "-dirty" with local changes), or None."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=10,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_config(run_dir: Path, config: Config, run: dict, results: dict | None = None) -> Path:
    """config.json; written before training (so a run can be resumed) and after it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    info = {"config": dataclasses.asdict(config), "run": run, **environment()}
    if results is not None:
        info["results"] = results
    path = run_dir / "config.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    tmp.replace(path)
    return path


def read_config(run_dir: Path) -> tuple[Config, dict]:
    """(Config, run options) of an existing run directory."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise ValueError(f"run_dir: {run_dir} has no config.json (not a purejaxvpg run directory).")
    info = json.loads(path.read_text())
    return Config.from_dict(info["config"]), info.get("run", {})


def write_metrics(run_dir: Path, result) -> list[Path]:
    """metrics.csv, metrics.npz and learning_curve.png of a finished run."""
    m = result.metrics
    names = [n for n in METRIC_NAMES if n in m and n != "env_steps"]
    num_seeds, num_updates = m["env_steps"].shape
    seed = np.repeat(np.arange(num_seeds), num_updates)
    update = np.tile(np.arange(num_updates), num_seeds)
    columns = [seed, update, m["env_steps"].reshape(-1)] + [m[n].reshape(-1) for n in names]
    table = np.column_stack([c.astype(np.float64) for c in columns])
    formats = ["%d", "%d", "%d"] + ["%d" if m[n].dtype.kind in "iu" else "%.7g" for n in names]
    csv_path = run_dir / "metrics.csv"
    np.savetxt(csv_path, table, fmt=formats, delimiter=",", comments="",
               header=",".join(["seed", "update", "env_steps", *names]))

    npz_path = run_dir / "metrics.npz"
    arrays = dict(m)
    arrays.update(result.eval_metrics)
    if result.eval_metrics:
        arrays["eval_env_steps"] = result.eval_env_steps[: next(iter(result.eval_metrics.values())).shape[1]]
    np.savez(npz_path, **arrays)

    png = plots.learning_curve(
        m["env_steps"][0], m["episode_return"], run_dir / "learning_curve.png",
        title=f"{result.config.env_id}: VPG, {num_seeds} seeds",
    )
    return [csv_path, npz_path, png]
