"""The memory estimate (purejaxvpg/memory.py) against what a run actually uses.

For each config, in a fresh subprocess: the estimate, XLA's buffer plan of the compiled
`jit(vmap(train))` (memory_analysis: arguments, outputs, temporaries) and the growth of
the process's peak RSS while the compiled program runs (from the RSS just before the run
to ru_maxrss after it; only meaningful where the run's peak exceeds the compile's, which
`rss_peak_is_the_run` says). On an accelerator the device's peak_bytes_in_use is read
instead of RSS. Writes benchmarks/results/<hardware>-memory-estimate.json.

    python -m benchmarks.memory_estimate [CASE ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CASES = {
    "cartpole-256-seeds": ({"total_steps": 20480}, 256),
    # evaluation-dominated (the probe case's shape, smaller): an evaluation plays the
    # environment's whole time limit, 100 steps here
    "bandit-eval-100k-episodes": (
        {"env_id": "Bandit-known", "total_steps": 512 * 4, "eval_every": 4, "eval_episodes": 100_000}, 2),
    "pendulum-8192-batch-16-seeds": (
        {"env_id": "Pendulum-v1", "num_envs": 64, "num_steps": 128, "total_steps": 8192 * 4}, 16),
    "catch-normalize-obs-eval-64-seeds": (
        {"env_id": "Catch-bsuite", "normalize_obs": True, "total_steps": 20480, "eval_every": 10}, 64),
}


def _rss_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def measure(name: str) -> dict:
    """One case, in this process (run it in a fresh one)."""
    import gc
    import resource

    import jax

    import purejaxvpg as pjv
    from purejaxvpg.host import driver, memory

    fields, num_seeds = CASES[name]
    config = pjv.Config(**fields)
    one = memory.estimate(driver.prepare(config))
    keys = pjv.seed_keys(0, num_seeds)
    compiled = jax.jit(jax.vmap(pjv.make_train(config))).lower(keys).compile()
    plan = compiled.memory_analysis()
    xla = {k: int(getattr(plan, k)) for k in (
        "argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes", "alias_size_in_bytes")}
    xla_total = xla["argument_size_in_bytes"] + xla["output_size_in_bytes"] + xla["temp_size_in_bytes"]
    gc.collect()
    rss_before = _rss_kib("VmRSS") * 1024
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    jax.block_until_ready(compiled(keys))
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    stats = jax.devices()[0].memory_stats() or {}
    return {
        "case": name,
        "config": fields,
        "num_seeds": num_seeds,
        "estimate_bytes": one.total * num_seeds,
        "estimate_parts_per_seed": {k: getattr(one, k) for k in ("state", "update", "metrics", "evaluation")},
        "xla_memory_analysis": xla,
        "xla_total_bytes": xla_total,
        "run_peak_rss_growth_bytes": peak_after - rss_before,
        "rss_peak_is_the_run": peak_after > peak_before,
        "device_peak_bytes_in_use": stats.get("peak_bytes_in_use"),
        "estimate_over_xla": one.total * num_seeds / xla_total,
        "estimate_over_rss_growth": one.total * num_seeds / max(1, peak_after - rss_before),
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        print(json.dumps(measure(sys.argv[2])))
        return
    import jax

    from purejaxvpg.tools.hardware import hardware, hardware_name

    hw = hardware()
    rows = []
    for name in sys.argv[1:] or CASES:
        out = subprocess.run([sys.executable, "-m", "benchmarks.memory_estimate", "--case", name],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{name:>30}: estimate {row['estimate_bytes'] / 2**20:8.1f} MiB  XLA plan "
              f"{row['xla_total_bytes'] / 2**20:8.1f} MiB  run RSS growth "
              f"{row['run_peak_rss_growth_bytes'] / 2**20:8.1f} MiB  (estimate / XLA "
              f"{row['estimate_over_xla']:.2f}, / RSS {row['estimate_over_rss_growth']:.2f})", flush=True)
    path = Path("benchmarks/results") / f"{hardware_name(hw)}-memory-estimate.json"
    if sys.argv[1:] and path.exists():  # some cases: keep the file's others
        done = {row["case"] for row in rows}
        rows = [row for row in json.loads(path.read_text())["cases"] if row["case"] not in done] + rows
        rows.sort(key=lambda row: list(CASES).index(row["case"]) if row["case"] in CASES else len(CASES))
    path.write_text(json.dumps({"hardware": hw, "jax": jax.__version__, "cases": rows}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
