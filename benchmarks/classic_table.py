"""The classic-control results table from the run directories of `benchmarks/classic_runs.sh`.

    bash benchmarks/classic_runs.sh                  # the runs (64 seeds per preset)
    python -m benchmarks.classic_table               # this table, the random-policy baseline, slim copies

Per environment: the final greedy evaluation (the number a run reports: 16 episodes per seed
after the last update, inside the compiled run) with IQM and mean and their 95% stratified-
bootstrap CIs, the final stochastic evaluation's and the last update's training return IQMs,
a uniform random policy on the same evaluation episodes (`benchmarks.returns`), the run's own
compile and run times, and the published figure (`benchmarks.returns.PUBLISHED`). Writes
DIR.json (every number, per seed) and DIR.md (the table), and prints the `plot` and `compare`
commands of the figures, their score ranges from the random policy (0) to the published
figure (1).

`--slim` rewrites each run's metrics.npz with only what the table and the figures read (the
returns, the evaluations, env steps, seeds), compressed: what the repository keeps. The
other per-update metrics, metrics.csv and the checkpoints stay out of it (rerun the script).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from benchmarks.returns import PUBLISHED, SUITE, ci, random_policy_returns
from purejaxvpg.host import rundir
from purejaxvpg.report import stats

DEFAULT_DIR = Path("benchmarks/results/cpu-2core-classic-64")
KEPT = ("env_steps", "episode_return", "seed", "eval_env_steps", "final_env_steps")  # + every eval_* array


def aggregate(values: np.ndarray) -> dict:
    return {k: dataclasses.asdict(v) for k, v in stats.aggregate(values).items()}


def record(run_dir: Path, random: list[float] | None) -> dict:
    config, run = rundir.read_config(run_dir)
    results = rundir.read_info(run_dir)["results"]
    with np.load(run_dir / "metrics.npz") as data:
        arrays = {name: data[name] for name in data.files}
    keep = np.ones(run["num_seeds"], bool)
    for seed in results["diverged"]["at_update"]:
        keep[int(seed)] = False
    greedy, stochastic = arrays["final_eval_return_greedy"], arrays["final_eval_return_stochastic"]
    training = arrays["episode_return"][:, -1]
    if random is None:
        random = [float(x) for x in random_policy_returns(config, run["num_seeds"], config.eval_episodes, run["seed"])]
    return {
        "env_id": config.env_id, "num_seeds": run["num_seeds"], "seed": run["seed"],
        "diverged": int((~keep).sum()), "env_steps_per_seed": int(arrays["final_env_steps"]),
        "eval_episodes": config.eval_episodes, "eval_every": config.eval_every,
        "final_greedy_eval": aggregate(greedy[keep]), "final_stochastic_eval": aggregate(stochastic[keep]),
        "final_training_return": aggregate(training[keep]), "random_policy": aggregate(np.asarray(random)),
        "final_greedy_eval_per_seed": greedy.tolist(), "random_policy_per_seed": random,
        "compile_seconds": results["compile_seconds"], "run_seconds": results["run_seconds"],
        "code": json.loads((run_dir / "config.json").read_text()).get("git_commit"),
    }


def render(records: dict) -> str:
    lines = ["| Environment | Seeds (base seed) | Env steps / seed | Final greedy eval IQM [95% CI] "
             "| Final greedy eval mean [95% CI] | Final stochastic eval IQM | Final training return IQM "
             "| Random policy IQM | Compile | Run | Published (source) |",
             "| --- | ---: | ---: | --- | --- | --- | --- | --- | ---: | ---: | --- |"]
    for env_id in [e for e in SUITE if e in records]:
        r = records[env_id]
        published = PUBLISHED.get(env_id)
        cited = f"{published[1]:g} ({published[0]})" if published else "—"
        lines.append(
            f"| {env_id} | {r['num_seeds']} ({r['seed']}) | {r['env_steps_per_seed']:,} "
            f"| {ci(r['final_greedy_eval']['iqm'])} | {ci(r['final_greedy_eval']['mean'])} "
            f"| {ci(r['final_stochastic_eval']['iqm'])} | {ci(r['final_training_return']['iqm'])} "
            f"| {ci(r['random_policy']['iqm'])} | {r['compile_seconds']:.1f} s | {r['run_seconds']:.0f} s | {cited} |")
    return "\n".join(lines) + "\n"


def score_ranges(records: dict) -> list[str]:
    """ENV=LOW:HIGH for compare: the random policy's mean (0) to the published figure (1;
    Catch-bsuite, unpublished: its best possible return, 1)."""
    out = []
    for env_id in [e for e in SUITE if e in records]:
        high = PUBLISHED[env_id][1] if env_id in PUBLISHED else 1.0
        out.append(f"{env_id}={records[env_id]['random_policy']['mean']['point']:.4g}:{high:g}")
    return out


def slim(run_dir: Path) -> None:
    """metrics.npz with only the returns, evaluations, env steps and seeds, compressed."""
    path = run_dir / "metrics.npz"
    with np.load(path) as data:
        kept = {k: data[k] for k in data.files if k in KEPT or "eval_" in k}
    tmp = path.with_name("metrics.slim.tmp")
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, **kept)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--slim", action="store_true", help="rewrite each metrics.npz as the repository keeps it")
    args = parser.parse_args(argv)
    path = args.dir.with_suffix(".json")
    before = json.loads(path.read_text()) if path.exists() else {}
    records = {}
    for env_id in SUITE:
        run_dir = args.dir / env_id
        if (run_dir / "metrics.npz").is_file():
            known = before.get(env_id, {}).get("random_policy_per_seed")  # computed once
            records[env_id] = record(run_dir, known)
            if args.slim:
                slim(run_dir)
    rundir.write_json(path, records)
    path.with_suffix(".md").write_text(render(records))
    vpg = " ".join(f"vpg={args.dir / e}" for e in records)  # one algorithm, its tasks
    ranges = " ".join(f"--score-range {r}" for r in score_ranges(records))
    print(render(records))
    print(f"purejaxvpg plot {vpg} --out {args.dir}-sample-efficiency.png")
    print(f"purejaxvpg compare {vpg} {ranges} --out {args.dir}-compare")
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
