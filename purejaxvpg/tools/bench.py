"""Training throughput across seed counts, set against a compute bound: `purejaxvpg bench`.

A scenario (`SCENARIOS`: a named Config) is measured at each seed count: compile time, run
time of a second call (compile excluded), environment steps per second, peak device memory
(where the backend reports it), final return, and the hardware and config; one JSON per run,
named after the hardware. Used by `purejaxvpg bench` and `python -m benchmarks.throughput`.
(Scenarios are benchmark settings; `purejaxvpg.presets.PRESETS` are per-environment configs.)

Each point is also set against a compute-bound estimate built from two measurements on
the same device, never from a datasheet:
  * FLOPs per environment step of one whole training run, from XLA's own cost analysis
    of the compiled program with every loop body times its trip count
    (`tools/flops.py`: XLA itself counts a loop body once); the count before XLA's passes
    is kept next to it, and used where the backend's compiled count misses a plain matmul
    (checked on the peak matmul: `xla_flops_over_2n3`);
  * the device's achieved dense float32 matmul throughput (`tools/hardware.py`), timed.
compute-bound steps/s = measured matmul FLOP/s / FLOPs per env step; the point records
achieved steps/s as a fraction of that.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from purejaxvpg.algo.prng import seed_keys
from purejaxvpg.algo.program import make_train
from purejaxvpg.config import Config
from purejaxvpg.host import driver, memory, placement, rundir
from purejaxvpg.paths import writable_folder
from purejaxvpg.tools.flops import flops_of, loop_aware_flops
from purejaxvpg.tools.hardware import hardware, hardware_name, load_average, matmul_peak, peak_device_bytes

# "cartpole-500k": the config PureJaxRL is compared on (docs/results.md): 4 envs x 128 steps,
# 500k steps per seed, tanh MLP 64x64, one policy step and one value step per update.
# "wide": the same settings with 64 envs per seed (64 x 128 = 8192 transitions per update,
# 61 updates, 499,712 steps per seed): wide enough per seed that 1024 seeds is 8.4 M
# transitions per update, the regime where the MLP, not the loop overhead, could bound it.
# A benchmark times training alone, as the anchor's program does: no final evaluation.
SCENARIOS = {
    "cartpole-500k": Config(env_id="CartPole-v1", num_envs=4, num_steps=128, value_iters=1, final_eval=False),
    "defaults": Config(env_id="CartPole-v1", final_eval=False),
    "wide": Config(env_id="CartPole-v1", num_envs=64, num_steps=128, value_iters=1, final_eval=False),
    # seconds, not a comparison figure: that the harness runs here (the user-path tests)
    "smoke": Config(env_id="CartPole-v1", num_envs=4, num_steps=32, total_steps=4096, value_iters=1,
                    final_eval=False),
}
# what `purejaxvpg bench` measures when no --scenario is given
DEFAULT_SCENARIOS = ("cartpole-500k", "defaults", "wide")


def scenario_of(run_: dict) -> str:
    """The scenario name of one entry of a results file's "runs" (before the rename: "preset")."""
    return run_["scenario"] if "scenario" in run_ else run_["preset"]


def parse_seeds(text: str) -> list[int]:
    """'1,16,256' -> [1, 16, 256]; a ValueError naming num_seeds for anything else."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 1:
        raise ValueError(f"num_seeds: expected comma-separated integers >= 1, got {text!r}.")
    return seeds


def parse_devices(text: str) -> list[int]:
    """'1,2,4,8' -> [1, 2, 4, 8]; a ValueError naming --devices for anything else. A single
    count above the devices there are is refused; in a list of several it is skipped
    (`measure`), so one command line serves machines of any size."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
        raise ValueError(f"--devices: expected distinct comma-separated device counts >= 1, got {text!r}.")
    available = len(jax.devices())
    if len(counts) == 1 and counts[0] > available:
        raise ValueError(f"--devices: must be between 1 and {available} (the {jax.default_backend()} devices "
                         f"there are), got {counts[0]}.")
    return counts


def seeds_that_fit(config: Config) -> int:
    """How many seeds of `config` one call can hold (memory.py's estimate); 0 if none."""
    try:
        return memory.seeds_that_fit(driver.prepare(config))
    except ValueError:  # not even one seed
        return 0


def flops_per_env_step(config: Config, seed: int = 0) -> float:
    """FLOPs of one seed's whole training run (init included) / its environment steps.

    `jax.vmap(train)` of one key is what is costed: the seeds of a vmapped call do the same
    work each, so the figure per seed does not depend on how many run at once. A whole run
    has only scans of static length (fori_loops with int bounds included), counted in full.
    """
    return flop_counts_per_env_step(config, seed)["compiled"]


def flop_counts_per_env_step(config: Config, seed: int = 0) -> dict:
    """{"compiled": ..., "before_optimisation": ...}: `flops_per_env_step` both ways."""
    count = loop_aware_flops(jax.vmap(make_train(config)), seed_keys(seed, 1))
    steps = config.num_updates * config.batch_size
    return {"compiled": count.flops / steps, "before_optimisation": count.flops_before_optimisation / steps}


def compute_bound(point: dict, flops_per_step: float, peak_flops_per_second: float) -> dict:
    """Add the compute-bound estimate and achieved / estimate to a measured point; none when
    XLA's cost analysis gave no positive FLOP count (jax 0.11.2 on an H200 gave 0 and a negative
    matmul count: benchmarks/results/h200-issue26.log), said in the point instead of dividing by 0."""
    if not flops_per_step or flops_per_step <= 0 or peak_flops_per_second <= 0:
        return {**point, "flops_per_env_step": flops_per_step,
                "compute_bound_unavailable": "XLA's cost analysis gave no positive FLOP count on this backend"}
    bound = peak_flops_per_second / flops_per_step
    return {
        **point,
        "flops_per_env_step": flops_per_step,
        "compute_bound_env_steps_per_second": bound,
        "fraction_of_compute_bound": point["env_steps_per_second"] / bound,
    }


def measure(
    config: Config,
    num_seeds: int,
    seed: int = 0,
    flops_per_step: float | None = None,
    peak_flops_per_second: float | None = None,
    devices: int = 1,
) -> dict:
    """One point: compile, a first call, then a timed second call of all seeds at once,
    split over the first `devices` devices (driver.sharded_run: the path every run takes;
    the seeds padded to a multiple of the devices, only the real seeds' steps counted).

    With `flops_per_step` (`flops_per_env_step`) and `peak_flops_per_second`
    (`matmul_peak`) the point also gets the compute-bound estimate (`compute_bound`).
    """
    point = {"num_seeds": num_seeds, "devices": devices}
    if devices > len(jax.devices()):
        return {**point, "skipped": f"{devices} devices asked for, {len(jax.devices())} available"}
    agent = driver.prepare(config)
    fit = seeds_that_fit(config) * devices
    if num_seeds > fit:
        return {**point, "skipped": f"estimated to need more memory than {devices} device(s) have (fits {fit})"}
    mesh = placement.mesh(devices)
    padded = placement.padded(num_seeds, devices)
    keys = placement.shard(placement.pad(placement.host_keys(seed_keys(seed, num_seeds)), padded), mesh)
    compiled, compile_s = driver.compile_timed(driver.sharded_run(agent, mesh), keys)
    jax.block_until_ready(compiled(keys))
    start = time.perf_counter()
    _, metrics, _ = jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - start
    final = placement.gather(metrics.episode_return)[:num_seeds, -1]
    steps = num_seeds * config.num_updates * config.batch_size
    point = {
        **point,
        "padded_seeds": padded,
        "device_kind": mesh.devices.flat[0].device_kind,
        "process_count": jax.process_count(),
        "compile_seconds": compile_s,
        "run_seconds": run_s,
        "env_steps_per_second": steps / run_s,
        "peak_device_bytes": peak_device_bytes(),
        "final_return_mean": float(final.mean()),
        "final_return_median": float(np.median(final)),
        "final_return_min": float(final.min()),
        # XLA's figure for this very program, every loop body once: far below the real
        # count (kept to show by how much; flops_per_env_step is the loop-aware one)
        "xla_flops_per_env_step_loop_bodies_once": flops_of(compiled) / steps,
    }
    if flops_per_step and peak_flops_per_second:
        point = compute_bound(point, flops_per_step, peak_flops_per_second)
    return point


def run(scenarios: list[str], seeds: list[int], out_dir: Path, log=print, devices: list[int] = (1,)) -> Path:
    """Measure every scenario at every seed count on each count of `devices` (counts above
    the devices there are: skipped points); write JSON (and a plot if matplotlib is there).

    The matmul peak is measured before and after the points and the higher of the two is
    used: other work on a shared machine only ever lowers a measurement, and the higher
    peak gives the higher bound, so the gap is never flattered. Both samples are recorded.
    The file is `<hardware>-throughput.json` for all scenarios, `<hardware>-<scenarios>-throughput.json`
    for a subset (a run of one scenario does not overwrite the full sweep), with
    `-devices-1-2-4` added when other device counts than 1 are measured.
    """
    usable = [d for d in devices if d <= len(jax.devices())]
    if not usable:
        raise ValueError(f"--devices: none of {list(devices)} is available ({len(jax.devices())} devices here); "
                         "nothing measured, nothing written.")
    for name in scenarios:  # nothing measured would overwrite a results file with skips only
        fit = seeds_that_fit(SCENARIOS[name]) * max(usable)
        if any(n <= fit for n in seeds):
            break
    else:
        raise ValueError(
            f"num_seeds: none of {seeds} fits in device memory (estimate) for "
            f"{', '.join(scenarios)}; nothing measured, nothing written."
        )
    out_dir = writable_folder(out_dir)  # before the work, not after it
    hw = hardware()
    record = {
        "hardware": hw,
        "date": time.strftime("%Y-%m-%d"),
        "load_average_at_start": load_average(),  # other work on a shared machine shows here
        "process_count": jax.process_count(),
        "devices": list(devices),  # the device counts asked for (each point names its own)
        "runs": [],
    }
    samples = [matmul_peak()]
    log(f"measured matmul peak (before): {samples[0]['flops_per_second'] / 1e9:,.1f} GFLOP/s")
    # the compiled count, unless this backend's compiled count misses a plain matmul
    source = "compiled" if abs(samples[0]["xla_flops_over_2n3"] - 1) < 0.01 else "before_optimisation"
    if source != "compiled":
        log(
            f"XLA's compiled cost analysis counts {samples[0]['xla_flops_over_2n3']:.3g} x 2n^3 for an "
            "n x n matmul here: FLOPs are counted on the HLO before XLA's passes instead"
        )
    record["flops_source"] = source
    for name in scenarios:
        config = SCENARIOS[name]
        start = time.perf_counter()
        counts = flop_counts_per_env_step(config)
        flops = counts[source]
        log(
            f"{name:>14}: {flops:,.0f} FLOPs per env step (XLA, loop-aware, {source}; "
            f"{time.perf_counter() - start:.1f} s to count)"
        )
        points = []
        for d, n in ((d, n) for d in devices for n in seeds):
            point = measure(config, n, devices=d)
            points.append(point)
            if "skipped" in point:
                log(f"{name:>14} {n:>6} seeds x{d:>2} devices: skipped ({point['skipped']})")
            else:
                log(
                    f"{name:>14} {n:>6} seeds x{d:>2} devices: compile {point['compile_seconds']:6.1f} s  "
                    f"run {point['run_seconds']:7.2f} s  {point['env_steps_per_second']:>14,.0f} steps/s  "
                    f"final return {point['final_return_mean']:.1f}"
                )
        record["runs"].append(
            {
                "scenario": name,
                "config": dataclasses.asdict(config),
                "flops_per_env_step": flops,
                "flops_per_env_step_compiled": counts["compiled"],
                "flops_per_env_step_before_optimisation": counts["before_optimisation"],
                "points": points,
            }
        )
    samples.append(matmul_peak())
    log(f"measured matmul peak (after): {samples[1]['flops_per_second'] / 1e9:,.1f} GFLOP/s")
    peak = max(samples, key=lambda p: p["flops_per_second"])
    record["matmul_peak"] = {**peak, "samples_flops_per_second": [p["flops_per_second"] for p in samples]}
    record["load_average_at_end"] = load_average()
    log(
        f"compute-bound estimate: {peak['flops_per_second'] / 1e9:,.1f} GFLOP/s "
        f"(float32 {peak['n']}x{peak['n']} matmul, the higher sample) / FLOPs per env step"
    )
    for run_ in record["runs"]:
        run_["points"] = [
            # d devices: d times one device's measured matmul throughput (an upper bound)
            p if "skipped" in p else compute_bound(p, run_["flops_per_env_step"],
                                                   peak["flops_per_second"] * p["devices"])
            for p in run_["points"]
        ]
        for p in run_["points"]:
            if "compute_bound_unavailable" in p:
                log(f"{scenario_of(run_):>14} {p['num_seeds']:>6} seeds: no compute-bound estimate "
                    f"({p['compute_bound_unavailable']})")
            elif "skipped" not in p:
                log(
                    f"{scenario_of(run_):>14} {p['num_seeds']:>6} seeds x{p['devices']:>2} devices: "
                    f"{p['env_steps_per_second']:>14,.0f} steps/s "
                    f"of a compute-bound {p['compute_bound_env_steps_per_second']:>14,.0f}: "
                    f"{100 * p['fraction_of_compute_bound']:.1f}%"
                )
    if all("skipped" in p for run_ in record["runs"] for p in run_["points"]):
        raise ValueError("num_seeds: every point was skipped (memory estimate); nothing written.")
    subset = "" if sorted(scenarios) == sorted(DEFAULT_SCENARIOS) else "-" + "-".join(scenarios)
    subset += "" if list(devices) == [1] else "-devices-" + "-".join(map(str, devices))
    path = out_dir / f"{hardware_name(hw)}{subset}-throughput.json"
    rundir.write_json(path, record)  # atomic: a killed run leaves the committed file whole
    plot(record, path.with_suffix(".png"), log)
    return path


def plot(record: dict, path: Path, log=print) -> None:
    """Steps/s against seeds, log-log, one line per scenario (dashed: its compute bound).

    `record` is a results file's content, old ones (runs keyed "preset") included.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no plot (pip install 'purejaxvpg[bench]')")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for run_ in record["runs"]:
        name, done = scenario_of(run_), [p for p in run_["points"] if "skipped" not in p]
        counts = sorted({p.get("devices", 1) for p in done})  # files before issue 13: one device
        for d in counts:
            seeds = [p["num_seeds"] for p in done if p.get("devices", 1) == d]
            speeds = [p["env_steps_per_second"] for p in done if p.get("devices", 1) == d]
            label = name if counts == [1] else f"{name}, {d} device(s)"
            (line,) = ax.loglog(seeds, speeds, "o-", label=label)
            bound = [p.get("compute_bound_env_steps_per_second") for p in done if p.get("devices", 1) == d]
            if bound and bound[0]:  # the same for every seed count: FLOPs per step are per seed
                ax.axhline(bound[0], color=line.get_color(), ls="--", lw=1, label=f"{label} compute-bound")
    ax.set_xlabel("seeds in one call")
    ax.set_ylabel("environment steps / s (compile excluded)")
    ax.set_title(record["hardware"]["device_kind"])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    log(f"wrote {path}")
