"""purejaxvpg side by side with PureJaxRL at equal work, in one process, interleaved.

    python -m benchmarks.anchor                               # 1, 16 and 64 seeds, 5 repeats
    python -m benchmarks.anchor --seeds 16 --repeats 3 --out F.json
    python -m benchmarks.anchor --anchor-dir PATH/TO/purejaxrl

The anchor is PureJaxRL's `ppo.py` at its nearest VPG-like setting (1 epoch, 1 minibatch,
no clipping, lr 1e-3; ../shared/anchors/README.md), against purejaxvpg with
`value_iters=1` (one policy step and one value step per update: the same gradient work),
both on "cartpole-500k": CartPole-v1, 4 envs x 128 steps, 500k steps per seed, 64x64 tanh.
Its code is not part of this project: it is imported from --anchor-dir, else
$PUREJAXVPG_ANCHOR_DIR, else ../shared/anchors/purejaxrl next to the checkout.

Per seed count: each side's compile split into tracing, lowering and XLA compilation
(jax.stages), the compiled program's size (HLO instructions, while loops, fusions), one
warm-up call, then `repeats` timed calls alternating which side goes first. Ours is lowered
as every purejaxvpg run is (the Threefry hash unrolled on the CPU, host/cpu_lowering.py);
the anchor as JAX lowers it by default (--threefry rolled: both as JAX does, i.e.
purejaxvpg before it unrolled the hash; --threefry unrolled: both unrolled). Ratios are
anchor / ours (> 1: ours is faster) per repeat, with their median. The persistent compile
cache stays off: the compile is what is timed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks.first_compile import _commit, _hardware
from purejaxvpg.host.cpu_lowering import unrolled_threefry
from purejaxvpg.tools.hardware import load_average

ROOT = Path(__file__).resolve().parents[1]
ENV = "PUREJAXVPG_ANCHOR_DIR"
NUM_ENVS, NUM_STEPS = 4, 128
# --threefry: which side lowers the Threefry hash unrolled on the CPU (host/cpu_lowering.py)
LOWERINGS = {"as-shipped": {"ours": True, "anchor": False}, "rolled": {"ours": False, "anchor": False},
             "unrolled": {"ours": True, "anchor": True}}


def anchor_dir(given: str | None) -> Path:
    """Where the anchor's ppo.py is; SystemExit naming every place looked when absent."""
    places = [Path(given)] if given else []
    if os.environ.get(ENV):
        places.append(Path(os.environ[ENV]))
    places.append(ROOT.parent / "shared" / "anchors" / "purejaxrl")
    for place in places:
        if (place / "ppo.py").is_file():
            return place.resolve()
        if given:
            break  # a path given on purpose is the only one tried
    raise SystemExit(f"benchmarks.anchor: PureJaxRL's ppo.py not found in {', '.join(map(str, places))}; "
                     f"give --anchor-dir or set {ENV}")


def anchor_program(where: Path, total_steps: int, num_seeds: int):
    """(jitted vmapped train, keys, final return from its output [seeds])."""
    sys.path.insert(0, str(where))
    ppo = importlib.import_module("ppo")
    config = {"LR": 1e-3, "NUM_ENVS": NUM_ENVS, "NUM_STEPS": NUM_STEPS, "TOTAL_TIMESTEPS": total_steps,
              "UPDATE_EPOCHS": 1, "NUM_MINIBATCHES": 1, "GAMMA": 0.99, "GAE_LAMBDA": 0.95, "CLIP_EPS": 1e9,
              "ENT_COEF": 0.01, "VF_COEF": 0.5, "MAX_GRAD_NORM": 0.5, "ACTIVATION": "tanh",
              "ENV_NAME": "CartPole-v1", "ANNEAL_LR": True, "DEBUG": False}
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)

    def final(out) -> np.ndarray:  # returned_episode_returns: [seeds, updates, steps, envs]
        return np.asarray(out["metrics"]["returned_episode_returns"])[:, -1].mean(axis=(-1, -2))

    return jax.jit(jax.vmap(ppo.make_train(config))), keys, final


def our_program(total_steps: int, num_seeds: int):
    import purejaxvpg as pjv

    config = pjv.Config(env_id="CartPole-v1", num_envs=NUM_ENVS, num_steps=NUM_STEPS, total_steps=total_steps,
                        value_iters=1, final_eval=False)  # the anchor evaluates nothing either
    return (jax.jit(jax.vmap(pjv.make_train(config))), pjv.seed_keys(0, num_seeds),
            lambda out: np.asarray(out[1].episode_return)[:, -1])


def compile_split(jitted, keys, unrolled: bool) -> tuple:
    """(compiled, {trace_s, lower_s, xla_s, compile_s, hlo}); `unrolled`: the Threefry hash
    lowered unrolled on the CPU, as every purejaxvpg run does (host/cpu_lowering.py)."""
    t0 = time.perf_counter()
    traced = jitted.trace(keys)
    t1 = time.perf_counter()
    if unrolled:
        with unrolled_threefry():
            lowered = traced.lower()
    else:
        lowered = traced.lower()
    t2 = time.perf_counter()
    compiled = lowered.compile()
    t3 = time.perf_counter()
    text = compiled.as_text()
    hlo = {"instructions": len(re.findall(r"^\s+(?:ROOT )?%?\S+ = ", text, re.M)),
           "while_loops": len(re.findall(r"\bwhile\(", text)),
           "fusions": len(re.findall(r"^\s+(?:ROOT )?%?\S+ = \S+ fusion\(", text, re.M)),
           "chars": len(text)}
    return compiled, {"trace_s": t1 - t0, "lower_s": t2 - t1, "xla_s": t3 - t2, "compile_s": t3 - t0, "hlo": hlo}


def timed(compiled, keys) -> tuple[float, object]:
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(keys))
    return time.perf_counter() - start, out


def point(where: Path, num_seeds: int, repeats: int, total_steps: int, anchor_first: bool,
          unrolled: dict) -> dict:
    sides = {"anchor": anchor_program(where, total_steps, num_seeds), "ours": our_program(total_steps, num_seeds)}
    order = ["anchor", "ours"] if anchor_first else ["ours", "anchor"]
    compiled, compile_info, finals = {}, {}, {}
    for name in order:
        jitted, keys, _ = sides[name]
        compiled[name], compile_info[name] = compile_split(jitted, keys, unrolled[name])
    for name in order:  # warm-up: first-call allocations are not the steady state
        _, out = timed(compiled[name], sides[name][1])
        finals[name] = float(np.mean(sides[name][2](out)))
    runs = {"anchor": [], "ours": []}
    for r in range(repeats):
        for name in (order if r % 2 == 0 else order[::-1]):
            runs[name].append(timed(compiled[name], sides[name][1])[0])
    ratios = [a / o for a, o in zip(runs["anchor"], runs["ours"])]
    steps = num_seeds * (total_steps // (NUM_ENVS * NUM_STEPS)) * NUM_ENVS * NUM_STEPS
    return {
        "seeds": num_seeds,
        "compile": compile_info,
        "compile_ratio_anchor_over_ours": compile_info["anchor"]["compile_s"] / compile_info["ours"]["compile_s"],
        "run_s": runs,
        "run_s_median": {k: statistics.median(v) for k, v in runs.items()},
        "env_steps_per_second_median": {k: steps / statistics.median(v) for k, v in runs.items()},
        "run_ratio_anchor_over_ours": ratios,
        "run_ratio_median": statistics.median(ratios),
        "final_return_mean": finals,  # both should learn: equal work, not equal results
        "load_average_after": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.anchor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--anchor-dir", default=None, help=f"the folder holding PureJaxRL's ppo.py (or ${ENV})")
    parser.add_argument("--seeds", default="1,16,64", help="comma-separated seed counts (default: 1,16,64)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per side and seed count (default: 5)")
    parser.add_argument("--total-steps", type=int, default=500_000, help="steps per seed (default: 500000)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: stdout only)")
    parser.add_argument("--threefry", choices=tuple(LOWERINGS), default="as-shipped",
                        help="the Threefry hash's CPU lowering: as-shipped (ours unrolled as every purejaxvpg run, "
                             "the anchor as JAX lowers it), rolled (both JAX's default: purejaxvpg before "
                             "cpu_lowering.py), unrolled (both unrolled)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds or min(seeds) < 1 or args.repeats < 1 or args.total_steps < NUM_ENVS * NUM_STEPS:
        raise SystemExit("benchmarks.anchor: --seeds, --repeats must be positive and --total-steps >= 512")
    where = anchor_dir(args.anchor_dir)
    if jax.config.jax_compilation_cache_dir:
        print(f"benchmarks.anchor: warning: JAX's persistent cache is on ({jax.config.jax_compilation_cache_dir}): "
              "compile times may be cache reads", file=sys.stderr)
    record = {
        "what": "benchmarks/anchor.py: PureJaxRL ppo.py (VPG-like: 1 epoch, 1 minibatch, no clip) vs purejaxvpg "
                "value_iters=1, cartpole-500k (4 envs x 128 steps), one process, interleaved repeats",
        "command": "python -m benchmarks.anchor " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "commit": _commit(),
        "anchor_dir": str(where),
        "hardware": _hardware(),
        "total_steps_per_seed": args.total_steps,
        "repeats": args.repeats,
        "threefry_lowering": {name: "unrolled" if u else "rolled" for name, u in LOWERINGS[args.threefry].items()},
        "load_average_before": load_average(),
        "points": [],
    }
    for i, n in enumerate(seeds):
        p = point(where, n, args.repeats, args.total_steps, anchor_first=i % 2 == 0,
                  unrolled=LOWERINGS[args.threefry])
        record["points"].append(p)
        print(f"{n:>5} seeds: run anchor/ours {p['run_ratio_median']:.2f}x (median of {args.repeats}; "
              f"{min(p['run_ratio_anchor_over_ours']):.2f}-{max(p['run_ratio_anchor_over_ours']):.2f}), "
              f"compile anchor/ours {p['compile_ratio_anchor_over_ours']:.2f}x "
              f"({p['compile']['anchor']['compile_s']:.1f} s vs {p['compile']['ours']['compile_s']:.1f} s)",
              flush=True)
        if args.out:  # after every point: a long run cut short keeps what it measured
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(record, indent=1) + "\n")
    if args.out:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
