"""A table of one task family under several networks, from run directories DIR/<env>-<network>.

    python -m benchmarks.network_table [--dir benchmarks/results/h200-minatar-64] [--slim]
    python -m benchmarks.network_table --dir benchmarks/results/cpu-2core-memory-16 \
        --envs MemoryCue-known,MemoryChain-bsuite --networks mlp,gru

The MinAtar runs of `benchmarks/device_loops_minatar.sh` (the preset's 256x256 MLP against
MinAtar's reference network: one 16-channel 3x3 convolution, then 128 units), the memory tasks
of `benchmarks/memory_runs.sh` (MLP against GRU). Per environment and network: the
final greedy evaluation (16 episodes per seed after the last update) with IQM and mean and their
95% stratified-bootstrap CIs, the stochastic and training IQMs, the uniform random policy on the
same episodes, and the run's compile and run times (a resumed run's times are its last leg's;
`resumed` says from which update). Writes DIR.json and DIR.md; `--slim` keeps each metrics.npz
as the repository does (`benchmarks.classic_table.slim`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.classic_table import record, slim
from benchmarks.returns import ci
from purejaxvpg.host import rundir

DEFAULT_DIR = Path("benchmarks/results/h200-minatar-64")
GAMES = "Breakout-MinAtar,SpaceInvaders-MinAtar,Asterix-MinAtar,Freeway-MinAtar"


def render(records: dict) -> str:
    lines = ["| Environment | Network | Seeds | Env steps / seed | Final greedy eval IQM [95% CI] "
             "| Mean [95% CI] | Stochastic eval IQM | Training return IQM | Random policy IQM "
             "| Compile | Run |",
             "| --- | --- | ---: | ---: | --- | --- | --- | --- | --- | ---: | ---: |"]
    for name, r in records.items():
        game, network = name.rsplit("-", 1)
        run = f"{r['run_seconds']:.0f} s" + (f" (resumed at update {r['resumed']})" if r["resumed"] else "")
        lines.append(
            f"| {game} | {network} | {r['num_seeds']} | {r['env_steps_per_seed']:,} "
            f"| {ci(r['final_greedy_eval']['iqm'])} | {ci(r['final_greedy_eval']['mean'])} "
            f"| {ci(r['final_stochastic_eval']['iqm'])} | {ci(r['final_training_return']['iqm'])} "
            f"| {ci(r['random_policy']['iqm'])} | {r['compile_seconds']:.1f} s | {run} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--slim", action="store_true", help="rewrite each metrics.npz as the repository keeps it")
    parser.add_argument("--envs", default=GAMES, help="comma-separated environment ids, the table's order")
    parser.add_argument("--networks", default="mlp,cnn", help="comma-separated run-directory suffixes")
    args = parser.parse_args(argv)
    games, networks = args.envs.split(","), args.networks.split(",")
    path = args.dir.with_suffix(".json")
    before = json.loads(path.read_text()) if path.exists() else {}
    records = {}
    for game in games:
        for network in networks:
            run_dir = args.dir / f"{game}-{network}"
            if not (run_dir / "metrics.npz").is_file():
                continue
            name = f"{game}-{network}"
            known = before.get(name, {}).get("random_policy_per_seed")  # computed once
            records[name] = record(run_dir, known)
            resumes = rundir.read_info(run_dir).get("resumes") or []
            records[name]["resumed"] = resumes[-1]["from_update"] if resumes else None
            if args.slim:
                slim(run_dir)
    rundir.write_json(path, records)
    path.with_suffix(".md").write_text(render(records))
    print(render(records))
    runs = " ".join(f"{name.rsplit('-', 1)[1]}={args.dir / name}" for name in records)
    print(f"purejaxvpg plot {runs} --out {args.dir}-{'-vs-'.join(networks)}.png")
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
