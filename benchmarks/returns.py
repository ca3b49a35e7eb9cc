"""The results table: every suite environment trained with its shipped preset, many seeds.

    python -m benchmarks.returns                       # the whole suite, 64 seeds each
    python -m benchmarks.returns --env CartPole-v1 --env Acrobot-v1 --num-seeds 128

For each environment: `Config.preset(env_id)`, one jitted, vmapped call over the seeds
(chunked automatically if it does not fit), and a greedy + stochastic evaluation of
`--eval-episodes` episodes per seed at the end, inside the same jitted run. Reported per
environment: IQM, mean and median across seeds with 95% stratified-bootstrap CIs of the
final-update training return and of the final greedy-evaluation return; env steps per
seed; compile, run and wall time; hardware. Results accumulate in
`benchmarks/results/<hardware>-returns.json` (one entry per environment, so the suite can
run piecewise) and the table is rendered to `<hardware>-returns.md`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import purejaxvpg as pjv
from purejaxvpg import envs
from purejaxvpg.algo import envstack
from purejaxvpg.algo.evaluate import eval_steps, make_play
from purejaxvpg.host import provenance, rundir
from purejaxvpg.report import stats
from purejaxvpg.tools.hardware import hardware, hardware_name

SUITE = (
    "CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1", "MountainCarContinuous-v0",
    "Catch-bsuite", "Breakout-MinAtar", "Asterix-MinAtar", "Freeway-MinAtar",
    "SpaceInvaders-MinAtar", "brax/halfcheetah", "brax/hopper",
)

# Published results on the same environments, for context (not the same budget or
# protocol: see the source). rl-baselines-zoo, benchmark.md at commit 0867db0
# (github.com/araffin/rl-baselines-zoo): tuned Stable-Baselines PPO2 agents, mean
# episodic return of the trained agent over ~150k evaluation steps. Pendulum is v0
# there (same dynamics and reward as v1, 200-step episodes).
PUBLISHED = {
    "CartPole-v1": ("PPO2 (rl-baselines-zoo)", 500.0),
    "Acrobot-v1": ("PPO2 (rl-baselines-zoo)", -85.1),
    "MountainCar-v0": ("PPO2 (rl-baselines-zoo)", -143.5),
    "Pendulum-v1": ("PPO2 (rl-baselines-zoo, Pendulum-v0)", -168.3),
    "MountainCarContinuous-v0": ("PPO2 (rl-baselines-zoo)", 91.7),
}


@dataclasses.dataclass(frozen=True)
class UniformPolicy:
    """The random-policy baseline: actions uniform over the space the trained policy acts in
    (the box after RescaleAction, when the preset rescales). Has the Actor's `apply`."""

    spec: envs.ActionSpec

    def apply(self, params, obs):  # obs [K, ...] -> a distribution over [K] actions
        return _Uniform(self.spec, obs.shape[0])


@dataclasses.dataclass(frozen=True)
class _Uniform:
    spec: envs.ActionSpec
    batch: int

    def sample(self, key):
        if self.spec.discrete:
            return jax.random.randint(key, (self.batch,), 0, self.spec.num_actions)
        shape = (self.batch, *self.spec.shape)
        return jax.random.uniform(key, shape, minval=jnp.asarray(self.spec.low), maxval=jnp.asarray(self.spec.high))


def random_policy_returns(config: pjv.Config, num_seeds: int, episodes: int, seed: int) -> list[float]:
    """Per seed, the mean undiscounted return of `episodes` episodes of the uniform random policy,
    on the same environment, wrappers and time limit as the trained policy's evaluation."""
    stack = envstack.build(dataclasses.replace(config, normalize_obs=False), episodes, evaluation=True)
    play = make_play(stack, UniformPolicy(stack.spec), eval_steps(config, stack))
    keys = jax.random.split(jax.random.key(seed + 10_000), num_seeds)  # not the training keys
    means = jax.jit(jax.vmap(lambda k: play(None, None, k, False).mean_return()))(keys)
    return [float(x) for x in means]


def measure(env_id: str, num_seeds: int, eval_episodes: int, seed: int = 0) -> dict:
    config = pjv.Config.preset(env_id)
    # the final evaluation, after the last update, inside the jitted run (Config.final_eval)
    config = dataclasses.replace(config, final_eval=True, eval_episodes=eval_episodes)
    start = time.perf_counter()
    result = pjv.train(config, num_seeds=num_seeds, seed=seed)
    wall = time.perf_counter() - start
    final = result.metrics["episode_return"][:, -1]
    greedy = result.final_eval["eval_return_greedy"]
    stochastic = result.final_eval["eval_return_stochastic"]
    summary = lambda x: {k: dataclasses.asdict(v) for k, v in stats.aggregate(x).items()}  # noqa: E731
    random_start = time.perf_counter()
    random = random_policy_returns(config, num_seeds, eval_episodes, seed)
    random_seconds = time.perf_counter() - random_start
    return {
        "env_id": env_id,
        "config": dataclasses.asdict(config),
        "num_seeds": num_seeds,
        "seed": seed,
        "env_steps_per_seed": int(result.metrics["env_steps"][0, -1]),
        "final_return": summary(final),
        "greedy_eval_return": summary(greedy),
        "stochastic_eval_return": summary(stochastic),
        "final_return_per_seed": final.tolist(),
        "greedy_eval_return_per_seed": greedy.tolist(),
        "random_policy_return": summary(random),  # same episodes per seed, uniform actions
        "random_policy_return_per_seed": random,
        "random_policy_seconds": random_seconds,
        "compile_seconds": result.compile_seconds,
        "run_seconds": result.run_seconds,
        "wall_seconds": wall,
        "hardware": hardware(),
        "git_commit": provenance.git_commit(),  # the code that produced these numbers
    }


def ci(x: dict) -> str:
    """'point [low, high]' of an interval dict: one decimal, or three for returns of order 1
    (MiniGrid, bandits)."""
    f = ".3f" if max(abs(x["low"]), abs(x["high"])) < 10 else ".1f"
    return f"{x['point']:{f}} [{x['low']:{f}}, {x['high']:{f}}]"


def render(records: dict) -> str:
    """The markdown table of every measured environment, suite order."""
    lines = [
        "| Environment | Seeds (base seed) | Env steps / seed | Final return IQM [95% CI] | Greedy eval IQM [95% CI] "
        "| Greedy eval mean [95% CI] | Random policy IQM [95% CI] | Compile | Run | Wall time | Published (source) |",
        "| --- | ---: | ---: | --- | --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for env_id in [e for e in SUITE if e in records] + sorted(set(records) - set(SUITE)):
        r = records[env_id]
        published = PUBLISHED.get(env_id)
        cited = f"{published[1]:g} ({published[0]})" if published else "—"
        lines.append(
            f"| {env_id} | {r['num_seeds']} ({r['seed']}) | {r['env_steps_per_seed']:,} | "
            f"{ci(r['final_return']['iqm'])} "
            f"| {ci(r['greedy_eval_return']['iqm'])} | {ci(r['greedy_eval_return']['mean'])} "
            f"| {ci(r['random_policy_return']['iqm']) if 'random_policy_return' in r else 'not measured'} "
            f"| {r['compile_seconds']:.0f} s | {r['run_seconds']:.0f} s | {r['wall_seconds']:.0f} s | {cited} |"
        )
    devices = {hardware_name(r["hardware"]) for r in records.values()}
    episodes = sorted({r["config"]["eval_episodes"] for r in records.values()})
    lines.append("")
    lines.append(f"Hardware: {', '.join(sorted(devices))}. Final return: episodic return of the "
                 "episodes that ended in the last update. Greedy eval: the distribution's mode, "
                 f"{'/'.join(map(str, episodes))} episodes per seed. CIs: stratified bootstrap over "
                 "seeds (2000 reps). Random policy: uniform actions, the same episodes per seed (rows "
                 "measured before it was added say 'not measured'). Compile and run: pjv.train's own split; "
                 "wall time: the whole pjv.train call.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", help="environment id (repeat); default: the suite")
    parser.add_argument("--num-seeds", type=int, default=64)
    parser.add_argument("--eval-episodes", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    if args.num_seeds < 16:
        print(f"note: {args.num_seeds} seeds; the published table uses at least 64 (16 for the suite adapters' rows)")
    available = set(envs.registered())
    chosen = args.env or [e for e in SUITE if e in available]
    unknown = [e for e in chosen if e not in available]
    if unknown:
        parser.error(f"--env: {envs.registry.unknown_env_message(unknown[0])}")
    name = hardware_name(hardware())
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}-returns.json"
    records = json.loads(path.read_text()) if path.exists() else {}
    for env_id in chosen:
        record = measure(env_id, args.num_seeds, args.eval_episodes, args.seed)
        records[env_id] = record
        rundir.write_json(path, records)  # each environment as it finishes
        (args.out / f"{name}-returns.md").write_text(render(records))
        f, g = record["final_return"]["iqm"], record["greedy_eval_return"]["iqm"]
        print(f"{env_id}: final IQM {f['point']:.1f} [{f['low']:.1f}, {f['high']:.1f}], greedy IQM "
              f"{g['point']:.1f} [{g['low']:.1f}, {g['high']:.1f}], wall {record['wall_seconds']:.0f} s",
              flush=True)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
