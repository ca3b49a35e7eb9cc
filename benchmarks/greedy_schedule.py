"""Does the source text's greedy-action schedule help? Final greedy-evaluation returns with and
without it, on the same seeds.

Per environment (its preset, or the shorter stated budget in BUDGETS), three arms, each
`--num-seeds` seeds that share their keys across arms (common random numbers):

    off      no schedule (greedy_start = greedy_end = 0): today's trainer
    exclude  greedy 0 -> END linearly, greedy steps left out of the policy loss (the default)
    keep     the same schedule, greedy steps kept in the policy loss (as the text implies)

`off` and `exclude` run in one vmapped call (the schedule's ends batched like a sweep's, so
`off` takes the schedule's code path at p = 0: today's run, up to the float rounding of a
batched call, tests/test_greedy_schedule.py);
`keep` (a static choice) in a second call. Each run ends with one greedy evaluation of
`--eval-episodes` episodes per seed inside the jitted run. Reported: IQM, mean and median
with 95% stratified-bootstrap CIs (purejaxvpg.report.stats), and each arm's paired
difference to `off` (same seed) with its bootstrap CI. Verdict per arm: "helps" / "hurts"
when that CI excludes 0, else "no measurable difference".

    python benchmarks/greedy_schedule.py --env CartPole-v1 --num-seeds 16

Results accumulate in `benchmarks/results/<hardware>-greedy-schedule.json` (one entry per
environment) and the table in the `.md` next to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np

import purejaxvpg as pjv
from purejaxvpg.config import SWEEPABLE
from purejaxvpg.host import provenance, rundir
from purejaxvpg.report import stats
from purejaxvpg.tools.hardware import hardware, hardware_name

ENVS = ("CartPole-v1", "Acrobot-v1", "Pendulum-v1")
# env steps per seed that fit a <= 10 min run of 3 arms x 16 seeds on 2 CPU cores
# (presets: CartPole 500k, Acrobot 1M, Pendulum 2M)
BUDGETS = {"CartPole-v1": 500_000, "Acrobot-v1": 500_000, "Pendulum-v1": 750_000}


def _summary(x) -> dict:
    return {k: dataclasses.asdict(v) for k, v in stats.aggregate(np.asarray(x)).items()}


def _verdict(interval: stats.Interval) -> str:
    if interval.low > 0:
        return "helps"
    if interval.high < 0:
        return "hurts"
    return "no measurable difference"


def _train(config: pjv.Config, starts: list[float], ends: list[float], num_seeds: int, seed: int):
    """One vmapped call: setting i's ends for seeds seed_keys(seed, n), every setting the same keys."""
    settings = len(ends)
    columns = {name: [getattr(config, name)] * (settings * num_seeds) for name in SWEEPABLE}
    columns["greedy_start"] = np.repeat(starts, num_seeds).tolist()
    columns["greedy_end"] = np.repeat(ends, num_seeds).tolist()
    keys = jnp.tile(pjv.seed_keys(seed, num_seeds), settings)
    return pjv.train(config, keys=keys, hparams=pjv.HyperParams(**columns))


def measure(env_id: str, num_seeds: int, end: float, total_steps: int, eval_episodes: int, seed: int) -> dict:
    config = pjv.Config.preset(env_id, total_steps=total_steps)
    config = dataclasses.replace(config, eval_every=config.num_updates, eval_episodes=eval_episodes)
    start = time.perf_counter()
    both = _train(config, [0.0, 0.0], [0.0, end], num_seeds, seed)
    keep = _train(dataclasses.replace(config, greedy_policy_loss="keep"), [0.0], [end], num_seeds, seed)
    wall = time.perf_counter() - start
    arms = {}
    for name, result, rows in (("off", both, slice(0, num_seeds)), ("exclude", both, slice(num_seeds, None)),
                               ("keep", keep, slice(None))):
        arms[name] = {
            "greedy_eval_per_seed": result.eval_metrics["eval_return_greedy"][rows, -1].tolist(),
            "final_return_per_seed": result.metrics["episode_return"][rows, -1].tolist(),
            "greedy_fraction_last_update": float(result.metrics["greedy_fraction"][rows, -1].mean()),
            "diverged": int((result.diverged_at[rows] >= 0).sum()),
        }
    off = np.array(arms["off"]["greedy_eval_per_seed"])
    for arm in arms.values():
        greedy = np.array(arm["greedy_eval_per_seed"])
        arm["greedy_eval"] = _summary(greedy)
        arm["final_return"] = _summary(arm["final_return_per_seed"])
        diff = stats.bootstrap_ci(greedy - off, stats.mean)  # paired: the same seed's key
        arm["paired_mean_difference_to_off"] = dataclasses.asdict(diff)
        arm["verdict"] = _verdict(diff)
    return {
        "env_id": env_id,
        "schedule": {"greedy_start": 0.0, "greedy_end": end, "greedy_schedule": "linear"},
        "config": dataclasses.asdict(config),
        "num_seeds": num_seeds,
        "seed": seed,
        "env_steps_per_seed": int(both.metrics["env_steps"][0, -1]),
        "arms": arms,
        "compile_seconds": both.compile_seconds + keep.compile_seconds,
        "run_seconds": both.run_seconds + keep.run_seconds,
        "wall_seconds": wall,
        "hardware": hardware(),
        "git_commit": provenance.git_commit(),
    }


def render(records: dict) -> str:
    ci = lambda d: f"{d['point']:.1f} [{d['low']:.1f}, {d['high']:.1f}]"  # noqa: E731
    lines = [
        "| Environment | Env steps / seed | Seeds | Arm | Greedy eval IQM [95% CI] | Greedy eval mean [95% CI] "
        "| Mean difference to off [95% CI] | Verdict | Last-update train return IQM [95% CI] | Wall time |",
        "| --- | ---: | ---: | --- | --- | --- | --- | --- | --- | ---: |",
    ]
    for r in records.values():
        for name, arm in r["arms"].items():
            diff = "—" if name == "off" else ci(arm["paired_mean_difference_to_off"])
            verdict = "—" if name == "off" else arm["verdict"]
            lines.append(
                f"| {r['env_id']} | {r['env_steps_per_seed']:,} | {r['num_seeds']} | {name} "
                f"| {ci(arm['greedy_eval']['iqm'])} | {ci(arm['greedy_eval']['mean'])} | {diff} | {verdict} "
                f"| {ci(arm['final_return']['iqm'])} | {r['wall_seconds']:.0f} s |"
            )
    ends = sorted({r["schedule"]["greedy_end"] for r in records.values()})
    lines += ["", f"Arms: off = no schedule; exclude / keep = greedy probability 0 -> {ends} linearly over the "
              "run, greedy steps excluded from / kept in the policy loss. Greedy eval: the mode policy, "
              f"{sorted({r['config']['eval_episodes'] for r in records.values()})} episodes per seed after the "
              "last update. Train return: episodes of the last update's rollout, greedy steps included. "
              "Seeds share keys across arms; differences are paired by seed. CIs: stratified "
              "bootstrap (2000 reps). Wall time: all three arms of the environment, compile included. Hardware: "
              f"{', '.join(sorted({hardware_name(r['hardware']) for r in records.values()}))}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", choices=ENVS, help="environment (repeat); default: all three")
    parser.add_argument("--num-seeds", type=int, default=16)
    parser.add_argument("--end", type=float, default=0.5, help="greedy probability at the last update")
    parser.add_argument("--total-steps", type=int, default=None, help="env steps per seed (default: BUDGETS)")
    parser.add_argument("--eval-episodes", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    name = hardware_name(hardware())
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}-greedy-schedule.json"
    records = json.loads(path.read_text()) if path.exists() else {}
    for env_id in args.env or ENVS:
        record = measure(env_id, args.num_seeds, args.end, args.total_steps or BUDGETS[env_id],
                         args.eval_episodes, args.seed)
        records[env_id] = record
        rundir.write_json(path, records)  # each environment as it finishes
        path.with_suffix(".md").write_text(render(records))
        for arm, values in record["arms"].items():
            g = values["greedy_eval"]["iqm"]
            print(f"{env_id} {arm}: greedy IQM {g['point']:.1f} [{g['low']:.1f}, {g['high']:.1f}] "
                  f"{values['verdict'] if arm != 'off' else ''}", flush=True)
        print(f"{env_id}: wall {record['wall_seconds']:.0f} s", flush=True)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
