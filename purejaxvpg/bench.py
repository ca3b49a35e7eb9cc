"""Throughput harness: seeds x configurations, one JSON per run named after the hardware.

For each point: compile time, run time of a second call (compile excluded), environment
steps per second, peak device memory (where the backend reports it), final return, and
the hardware and config. Used by `purejaxvpg bench` and `python -m benchmarks.throughput`.

Each point is also set against a compute-bound estimate built from two measurements on
the same device, never from a datasheet:
  * FLOPs per environment step of one whole training run, from XLA's own cost analysis
    of the compiled program, with every loop body multiplied by its trip count
    (`loop_aware_flops`: XLA itself counts a while/scan body once, see there); the count
    before XLA's passes is kept next to it, and used where the backend's compiled count
    misses a plain matmul (checked on the peak matmul: `xla_flops_over_2n3`);
  * the device's achieved dense float32 matmul throughput (`matmul_peak`), timed.
compute-bound steps/s = measured matmul FLOP/s / FLOPs per env step; the point records
achieved steps/s as a fraction of that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import re
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from purejaxvpg import memory, rundir
from purejaxvpg.config import Config
from purejaxvpg.sweep import writable_dir
from purejaxvpg.train import _make_train, seed_keys, setup

# "cartpole-500k": the comparison config of DESIGN.md (4 envs x 128 steps, 500k steps per
# seed, tanh MLP 64x64, one policy step and one value step per update).
# "wide": the same settings with 64 envs per seed (64 x 128 = 8192 transitions per update,
# 61 updates, 499,712 steps per seed): wide enough per seed that 1024 seeds is 8.4 M
# transitions per update, the regime where the MLP, not the loop overhead, could bound it.
PRESETS = {
    "cartpole-500k": Config(env_id="CartPole-v1", num_envs=4, num_steps=128, value_iters=1),
    "defaults": Config(env_id="CartPole-v1"),
    "wide": Config(env_id="CartPole-v1", num_envs=64, num_steps=128, value_iters=1),
}
DEFAULT_SEEDS = (1, 16, 256, 1024, 4096, 8192)


def parse_seeds(text: str) -> list[int]:
    """"1,16,256" -> [1, 16, 256]; a ValueError naming num_seeds for anything else."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 1:
        raise ValueError(f"num_seeds: expected comma-separated integers >= 1, got {text!r}.")
    return seeds


def seeds_that_fit(config: Config) -> int:
    """How many seeds of `config` one call can hold (memory.py's estimate); 0 if none."""
    s = setup(config)
    try:
        return memory.seeds_that_fit(config, s.obs_shape, s.spec.size)
    except ValueError:  # not even one seed
        return 0


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


def _load_average() -> list[float] | None:
    """The host's 1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _peak_bytes() -> int | None:
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # backends without memory statistics
        return None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


# --- FLOPs: XLA's cost analysis, loop bodies times their trip counts -------------------
#
# What this jax/XLA does (jax 0.10.2 on the CPU, checked in tests/test_bench.py):
# `jax.jit(f).lower(*args).compile().cost_analysis()` returns a dict (older jax: a list
# with one dict per program) whose "flops" counts every instruction once, and a while
# loop's body is one computation: a lax.scan of 10 or of 20 matmuls reports the flops of
# one matmul, and a whole training run reports the same flops for 6 or 12 updates.
# XLA inlines a loop of one trip (counted right) and deletes a loop of zero trips (the
# "flops" key is then missing: 0). Transcendentals (tanh, exp) are in their own key,
# not in "flops". The trainer nests loops (updates > rollout steps, GAE steps, value
# steps; fori_loops in the orthogonal init), so scaling the whole-run figure by one trip
# count is not enough: `loop_aware_flops` cuts every loop out of the program, asks XLA
# for the cost of what is left, and adds trip count x (the same count of the body).
# Loops inside lax.cond branches (evaluation with eval_every > 0) stay as XLA counts
# them; the bench presets do not evaluate.

_LOOPS = ("scan", "while")


def xla_flops(fn, *args) -> float:
    """XLA's "flops" of the compiled `jax.jit(fn)(*args)` (loop bodies counted once)."""
    return _xla_costs(fn, *args)[0]


def _xla_costs(fn, *args) -> tuple[float, float]:
    """("flops" of the compiled program, "flops" of the program before XLA's passes).

    The second is a cross-check: some jax versions' GPU backends report a matmul turned
    into a cuBLAS call with (almost) no flops in the compiled count (jax-ml/jax#22249).
    """
    lowered = jax.jit(fn).lower(*args)
    try:  # the count is of the HLO after XLA's passes; LLVM's optimisation level only
        # changes the machine code (same flops, half the compile time on the CPU)
        compiled = lowered.compile(compiler_options={"xla_backend_optimization_level": 0})
    except Exception:  # a backend or jax version without the option
        compiled = lowered.compile()
    return _flops_of(compiled), _flops_of(lowered)


def _flops_of(stage) -> float:
    """The "flops" entry of a Compiled's or Lowered's cost analysis (0 where there is none)."""
    cost = stage.cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax: one dict per program
        cost = cost[0] if cost else None
    return float((cost or {}).get("flops", 0.0))


@dataclasses.dataclass
class FlopCount:
    flops: float = 0.0  # loop bodies times their trip counts
    flops_before_optimisation: float = 0.0  # the same from the HLO before XLA's passes
    pieces_compiled: int = 0  # programs XLA costed (the cut program, then each body)
    while_loops_counted_once: int = 0  # while loops of unknown trip count (none in train)


def loop_aware_flops(fn, *args) -> FlopCount:
    """FLOPs of `fn(*args)` from XLA's cost analysis, every scan body times its length."""
    count = FlopCount()
    _count(jax.make_jaxpr(fn)(*args), count)
    return count


def _core():
    from jax.extend import core  # jax >= 0.4.30

    return core


def _sub_call(eqn):
    """(jaxpr, consts) of a call-like equation (jit, custom_jvp/vjp, checkpoint) or None."""
    core = _core()
    if eqn.primitive.name in _LOOPS or eqn.primitive.name == "cond":
        return None
    for value in eqn.params.values():
        inner, consts = (value.jaxpr, value.consts) if isinstance(value, core.ClosedJaxpr) else (value, ())
        if (
            isinstance(inner, core.Jaxpr)
            and len(inner.invars) == len(eqn.invars)
            and len(inner.outvars) == len(eqn.outvars)
        ):
            return inner, consts
    return None


def _has_loop(jaxpr) -> bool:
    core = _core()
    return any(
        eqn.primitive.name in _LOOPS or any(_has_loop(j) for j in core.jaxprs_in_params(eqn.params))
        for eqn in jaxpr.eqns
    )


def _loops(jaxpr, found: list) -> list:
    """The loop equations reachable without entering a loop, in evaluation order."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in _LOOPS:
            found.append(eqn)
        elif (sub := _sub_call(eqn)) is not None and _has_loop(sub[0]):
            _loops(sub[0], found)
    return found


def _eval_cut(jaxpr, consts, args, loop_outputs, loop_inputs: list):
    """Evaluate `jaxpr` with every loop (as `_loops` orders them) cut out: its outputs are
    read from `loop_outputs`, its inputs are appended to `loop_inputs`."""
    core = _core()
    env = {}

    def read(v):
        return v.val if isinstance(v, core.Literal) else env[v]

    for var, val in zip(jaxpr.constvars, consts):
        env[var] = val
    for var, val in zip(jaxpr.invars, args):
        env[var] = val
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        sub = None if eqn.primitive.name in _LOOPS else _sub_call(eqn)
        if eqn.primitive.name in _LOOPS:
            loop_inputs.extend(x for v, x in zip(eqn.invars, invals) if not isinstance(v, core.Literal))
            outs = [next(loop_outputs) for _ in eqn.outvars]
        elif sub is not None and _has_loop(sub[0]):
            outs = _eval_cut(sub[0], sub[1], invals, loop_outputs, loop_inputs)
        else:
            bound = eqn.primitive.get_bind_params(eqn.params)  # older jax: (subfuns, params)
            subfuns, params = bound if isinstance(bound, tuple) else ((), bound)
            with getattr(getattr(eqn, "ctx", None), "manager", contextlib.nullcontext()):
                outs = eqn.primitive.bind(*subfuns, *invals, **params)
            outs = outs if eqn.primitive.multiple_results else [outs]
        for var, val in zip(eqn.outvars, outs):
            if not isinstance(var, core.DropVar):
                env[var] = val
    return [read(v) for v in jaxpr.outvars]


def _spec(var) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(var.aval.shape, var.aval.dtype)


def _count(closed, count: FlopCount, times: float = 1.0) -> None:
    """Add `times` x the FLOPs of `closed` (a ClosedJaxpr) to `count`."""
    loops = _loops(closed.jaxpr, [])
    n_in = len(closed.jaxpr.invars)

    def cut(*flat):  # the loops' outputs are inputs, their inputs are outputs: nothing is
        loop_inputs = []  # constant-folded away and nothing feeding a loop is dead code
        outs = _eval_cut(closed.jaxpr, closed.consts, flat[:n_in], iter(flat[n_in:]), loop_inputs)
        return outs, loop_inputs

    specs = [_spec(v) for v in closed.jaxpr.invars] + [_spec(v) for eqn in loops for v in eqn.outvars]
    compiled, before = _xla_costs(cut, *specs)
    count.flops += times * compiled
    count.flops_before_optimisation += times * before
    count.pieces_compiled += 1
    for eqn in loops:
        if eqn.primitive.name == "scan":
            if eqn.params["length"] > 0:
                _count(eqn.params["jaxpr"], count, times * eqn.params["length"])
        else:  # while: trip count unknown until run time; body and condition once
            count.while_loops_counted_once += 1
            _count(eqn.params["cond_jaxpr"], count, times)
            _count(eqn.params["body_jaxpr"], count, times)


def flops_per_env_step(config: Config, seed: int = 0) -> float:
    """FLOPs of one seed's whole training run (init included) / its environment steps.

    `jax.vmap(train)` of one key is what is costed: the seeds of a vmapped call do the same
    work each, so the figure per seed does not depend on how many run at once.
    """
    return flop_counts_per_env_step(config, seed)["compiled"]


def flop_counts_per_env_step(config: Config, seed: int = 0) -> dict:
    """{"compiled": ..., "before_optimisation": ...}: `flops_per_env_step` both ways."""
    s = setup(config)
    count = loop_aware_flops(jax.vmap(_make_train(s)), seed_keys(seed, 1))
    steps = config.num_updates * config.batch_size
    return {"compiled": count.flops / steps, "before_optimisation": count.flops_before_optimisation / steps}


# --- measured matmul throughput --------------------------------------------------------


def default_matmul_size() -> int:
    return 2048 if jax.default_backend() == "cpu" else 4096


def matmul_peak(n: int | None = None, repeats: int = 7, min_seconds: float = 0.05) -> dict:
    """The device's achieved dense float32 n x n @ n x n throughput, timed (median).

    The matmul runs at jax's default precision, the one the trainer's MLP runs at (on
    GPUs with TF32 that may be TF32): the estimate compares like with like. Each timed
    repeat is `calls` back-to-back calls (at least `min_seconds`), then block_until_ready.
    """
    n = n or default_matmul_size()
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul).lower(a, b).compile()
    xla_count = _flops_of(matmul)
    jax.block_until_ready(matmul(a, b))  # warm-up
    start = time.perf_counter()
    jax.block_until_ready(matmul(a, b))
    calls = max(1, int(np.ceil(min_seconds / max(time.perf_counter() - start, 1e-9))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = matmul(a, b)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - start) / calls)
    seconds = float(np.median(times))
    return {
        "n": n,
        "dtype": "float32",
        "precision": str(jax.config.jax_default_matmul_precision or "default"),
        "repeats": repeats,
        "calls_per_repeat": calls,
        "seconds_median": seconds,
        "flops_per_second": 2 * n**3 / seconds,
        # XLA's compiled count of this matmul against 2n^3: does this backend count matmuls?
        "xla_flops_over_2n3": xla_count / (2 * n**3),
    }


def compute_bound(point: dict, flops_per_step: float, peak_flops_per_second: float) -> dict:
    """Add the compute-bound estimate and achieved / estimate to a measured point."""
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
) -> dict:
    """One point: compile, a first call, then a timed second call of all seeds at once.

    With `flops_per_step` (`flops_per_env_step`) and `peak_flops_per_second`
    (`matmul_peak`) the point also gets the compute-bound estimate (`compute_bound`).
    """
    point = {"num_seeds": num_seeds}
    s = setup(config)
    fit = seeds_that_fit(config)
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
    point = {
        **point,
        "compile_seconds": compile_s,
        "run_seconds": run_s,
        "env_steps_per_second": steps / run_s,
        "peak_device_bytes": _peak_bytes(),
        "final_return_mean": float(final.mean()),
        "final_return_median": float(np.median(final)),
        "final_return_min": float(final.min()),
        # XLA's figure for this very program, every loop body once: far below the real
        # count (kept to show by how much; flops_per_env_step is the loop-aware one)
        "xla_flops_per_env_step_loop_bodies_once": _flops_of(compiled) / steps,
    }
    if flops_per_step and peak_flops_per_second:
        point = compute_bound(point, flops_per_step, peak_flops_per_second)
    return point


def run(presets: list[str], seeds: list[int], out_dir: Path, log=print) -> Path:
    """Measure every preset at every seed count; write JSON (and a plot if matplotlib is there).

    The matmul peak is measured before and after the points and the higher of the two is
    used: other work on a shared machine only ever lowers a measurement, and the higher
    peak gives the higher bound, so the gap is never flattered. Both samples are recorded.
    The file is `<hardware>-throughput.json` for all presets, `<hardware>-<presets>-throughput.json`
    for a subset (a run of one preset does not overwrite the full sweep).
    """
    for name in presets:  # nothing measured would overwrite a results file with skips only
        fit = seeds_that_fit(PRESETS[name])
        if any(n <= fit for n in seeds):
            break
    else:
        raise ValueError(
            f"num_seeds: none of {seeds} fits in device memory (estimate) for "
            f"{', '.join(presets)}; nothing measured, nothing written."
        )
    out_dir = writable_dir(out_dir)  # before the work, not after it
    hw = hardware()
    record = {
        "hardware": hw,
        "date": time.strftime("%Y-%m-%d"),
        "load_average_at_start": _load_average(),  # other work on a shared machine shows here
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
    for name in presets:
        config = PRESETS[name]
        start = time.perf_counter()
        counts = flop_counts_per_env_step(config)
        flops = counts[source]
        log(
            f"{name:>14}: {flops:,.0f} FLOPs per env step (XLA, loop-aware, {source}; "
            f"{time.perf_counter() - start:.1f} s to count)"
        )
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
        record["runs"].append(
            {
                "preset": name,
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
    record["load_average_at_end"] = _load_average()
    log(
        f"compute-bound estimate: {peak['flops_per_second'] / 1e9:,.1f} GFLOP/s "
        f"(float32 {peak['n']}x{peak['n']} matmul, the higher sample) / FLOPs per env step"
    )
    for run_ in record["runs"]:
        run_["points"] = [
            p if "skipped" in p else compute_bound(p, run_["flops_per_env_step"], peak["flops_per_second"])
            for p in run_["points"]
        ]
        for p in run_["points"]:
            if "skipped" not in p:
                log(
                    f"{run_['preset']:>14} {p['num_seeds']:>6} seeds: {p['env_steps_per_second']:>14,.0f} steps/s "
                    f"of a compute-bound {p['compute_bound_env_steps_per_second']:>14,.0f}: "
                    f"{100 * p['fraction_of_compute_bound']:.1f}%"
                )
    if all("skipped" in p for run_ in record["runs"] for p in run_["points"]):
        raise ValueError("num_seeds: every point was skipped (memory estimate); nothing written.")
    subset = "" if sorted(presets) == sorted(PRESETS) else "-" + "-".join(presets)
    path = out_dir / f"{hardware_name(hw)}{subset}-throughput.json"
    path.write_text(rundir.json_text(record))
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
        (line,) = ax.loglog(
            [p["num_seeds"] for p in done], [p["env_steps_per_second"] for p in done], "o-", label=run_["preset"]
        )
        bound = [p["compute_bound_env_steps_per_second"] for p in done if "compute_bound_env_steps_per_second" in p]
        if bound:  # the same for every seed count: FLOPs per step are per seed
            ax.axhline(bound[0], color=line.get_color(), ls="--", lw=1, label=f"{run_['preset']} compute-bound")
    ax.set_xlabel("seeds in one call")
    ax.set_ylabel("environment steps / s (compile excluded)")
    ax.set_title(record["hardware"]["device_kind"])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    log(f"wrote {path}")
