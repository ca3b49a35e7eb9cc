"""Throughput harness: seeds x configurations, one JSON per run named after the hardware.

For each point: compile time, run time of a second call (compile excluded), environment
steps per second, peak device memory (where the backend reports it), final return, and
the hardware and config. Used by `purejaxvpg bench` and `python -m benchmarks.throughput`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import time
from pathlib import Path

import jax
import numpy as np

from purejaxvpg import memory
from purejaxvpg.config import Config
from purejaxvpg.train import _make_train, seed_keys, setup

# "cartpole-500k": the comparison config of DESIGN.md (4 envs x 128 steps, 500k steps per
# seed, tanh MLP 64x64, one policy step and one value step per update).
PRESETS = {
    "cartpole-500k": Config(env_id="CartPole-v1", num_envs=4, num_steps=128, value_iters=1),
    "defaults": Config(env_id="CartPole-v1"),
}
DEFAULT_SEEDS = (1, 16, 256, 1024, 4096, 8192)


def hardware() -> dict:
    device = jax.devices()[0]
    return {
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "jaxlib": getattr(jax.lib, "__version__", None),
        "processor": platform.processor() or platform.machine(),
    }


def hardware_name(hw: dict) -> str:
    """A file-name slug: 'nvidia-h100-80gb-hbm3', or 'cpu-2core' on the CPU."""
    if hw["backend"] == "cpu":
        return f"cpu-{hw['cpu_count']}core"
    return re.sub(r"[^a-z0-9]+", "-", hw["device_kind"].lower()).strip("-")


def _peak_bytes() -> int | None:
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # backends without memory statistics
        return None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def measure(config: Config, num_seeds: int, seed: int = 0) -> dict:
    """One point: compile, a first call, then a timed second call of all seeds at once."""
    point = {"num_seeds": num_seeds}
    s = setup(config)
    fit = memory.seeds_that_fit(config, s.obs_shape, s.spec.size)
    if num_seeds > fit:
        return {**point, "skipped": f"estimated to need more memory than the device has (fits {fit})"}
    keys = seed_keys(seed, num_seeds)
    run = jax.jit(jax.vmap(_make_train(s)))
    start = time.perf_counter()
    compiled = run.lower(keys).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(keys))
    start = time.perf_counter()
    _, metrics = jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - start
    final = np.asarray(metrics["episode_return"][:, -1])
    steps = num_seeds * config.num_updates * config.batch_size
    return {
        **point,
        "compile_seconds": compile_s,
        "run_seconds": run_s,
        "env_steps_per_second": steps / run_s,
        "peak_device_bytes": _peak_bytes(),
        "final_return_mean": float(final.mean()),
        "final_return_median": float(np.median(final)),
        "final_return_min": float(final.min()),
    }


def run(presets: list[str], seeds: list[int], out_dir: Path, log=print) -> Path:
    """Measure every preset at every seed count; write JSON (and a plot if matplotlib is there)."""
    hw = hardware()
    record = {"hardware": hw, "date": time.strftime("%Y-%m-%d"), "runs": []}
    for name in presets:
        config = PRESETS[name]
        points = []
        for n in seeds:
            point = measure(config, n)
            points.append(point)
            if "skipped" in point:
                log(f"{name:>14} {n:>6} seeds: skipped ({point['skipped']})")
            else:
                log(
                    f"{name:>14} {n:>6} seeds: compile {point['compile_seconds']:6.1f} s  "
                    f"run {point['run_seconds']:7.2f} s  {point['env_steps_per_second']:>14,.0f} steps/s  "
                    f"final return {point['final_return_mean']:.1f}"
                )
        record["runs"].append({"preset": name, "config": dataclasses.asdict(config), "points": points})
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{hardware_name(hw)}-throughput.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    plot(record, path.with_suffix(".png"), log)
    return path


def plot(record: dict, path: Path, log=print) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no plot (pip install 'purejaxvpg[bench]')")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for run_ in record["runs"]:
        done = [p for p in run_["points"] if "skipped" not in p]
        ax.loglog([p["num_seeds"] for p in done], [p["env_steps_per_second"] for p in done], "o-", label=run_["preset"])
    ax.set_xlabel("seeds in one call")
    ax.set_ylabel("environment steps / s (compile excluded)")
    ax.set_title(record["hardware"]["device_kind"])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    log(f"wrote {path}")
