"""The reference text's claim, measured: each step of the ladder R(tau) -> R^f_t -> A_t lowers
the variance of the policy-gradient estimate (README, "The policy-gradient weight").

    python -m benchmarks.pg_variance variance --env CartPole-v1 --env Pendulum-v1
    python -m benchmarks.pg_variance curves --env CartPole-v1 --num-seeds 16 --total-steps 500000
    python -m benchmarks.pg_variance render

variance: at FIXED parameters (the initial ones, and those after a short default training of
one seed), many batches of the trainer's size (num_envs x num_steps) are drawn with the same
policy: `--chains` independent runs (own keys) of consecutive rollouts, as the trainer sees
them, after a warm-up of one time limit (so the episodes in progress have a past, carried as
the trainer carries it). All three weightings are computed on the same batches (a paired
comparison), each with the raw weights (the text's estimator) and standardised (the
trainer's default, normalize_advantages). Per weighting: the total variance of the flattened
gradient g = grad mean_t[log pi(a_t|s_t) w_t] (trace of its covariance over batches, with a
95% bootstrap interval over chains), its per-parameter mean, the squared norm of the mean
gradient (unbiased: minus trace / batches), their ratio (noise-to-signal: free of the weights'
scale; the number of batches whose mean has an error as large as the gradient itself) and
the cosine of the mean gradient with GAE's.

curves: the trainer with each pg_weight, `--num-seeds` seeds, training return per update,
IQM across seeds with 95% stratified-bootstrap intervals (purejaxvpg.report.stats).

Results accumulate in benchmarks/results/<hardware>-pg-weights.json; `render` writes the
markdown table and the figure next to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import purejaxvpg as pjv
from purejaxvpg.algo import gae, losses, pg_weight, program, rollout
from purejaxvpg.config import PG_WEIGHTS
from purejaxvpg.host import provenance
from purejaxvpg.report import stats
from purejaxvpg.tools.hardware import hardware, hardware_name

RESULTS = Path(__file__).parent / "results"
TRAIN_STEPS = {"CartPole-v1": 100_000, "Pendulum-v1": 400_000}  # the "trained" parameters


def gradients(config: pjv.Config, actor_params, critic_params, key, chains: int, rollouts: int):
    """{(pg_weight, standardised): [chains, rollouts, P]} flattened policy gradients at fixed
    parameters, every rollout of every chain one batch."""
    agent = program.Agent.build(config)
    stack, T, E = agent.stack, config.num_steps, config.num_envs
    flat = lambda x: x.reshape(T * E, *x.shape[2:])  # noqa: E731
    policy = lambda obs: agent.actor.apply(actor_params, obs)  # noqa: E731
    zeros = jnp.zeros((T, E), jnp.float32)

    def collect(carry):
        runner, so_far = carry
        runner, batch = rollout.collect(policy, stack.env, stack.env_params, stack.spec, runner, T)
        _, after = pg_weight.episode_return(batch.reward, zeros, batch.terminated, batch.truncated, so_far,
                                          config.gamma)
        return (runner, after), batch, so_far

    def measured(carry, _):
        carry, batch, so_far = collect(carry)
        v = agent.critic.apply(critic_params, jnp.concatenate([flat(batch.obs), flat(batch.next_obs)]))
        values, next_values = v[: T * E].reshape(T, E), v[T * E :].reshape(T, E)
        advantages, _ = gae.gae(batch.reward, values, next_values, batch.terminated, batch.truncated,
                                config.gamma, config.gae_lambda)
        obs, actions = flat(batch.obs), flat(batch.action)
        out = {}
        for name in PG_WEIGHTS:
            w, _ = pg_weight.psi(name, advantages, batch.reward, next_values, batch.terminated,
                                          batch.truncated, so_far, config.gamma)
            for standardised in (False, True):
                wf = losses.normalize(flat(w)) if standardised else flat(w)
                grad = jax.grad(lambda p, wf=wf: jnp.mean(agent.actor.apply(p, obs).log_prob(actions) * wf))
                out[f"{name}|{int(standardised)}"] = ravel_pytree(grad(actor_params))[0]
        return carry, out

    warmup = -(-stack.horizon // T)  # rollouts covering one time limit

    def chain(key):
        carry = (rollout.reset(stack.env, stack.env_params, key), pg_weight.EpisodeSoFar.zeros(E))
        carry, _ = jax.lax.scan(lambda c, _: (collect(c)[0], None), carry, None, length=warmup)
        return jax.lax.scan(measured, carry, None, length=rollouts)[1]

    out = jax.jit(jax.vmap(chain))(jax.random.split(key, chains))
    return {tuple(k.split("|")): np.asarray(v, np.float64) for k, v in out.items()}


def summarise(grads: np.ndarray, reference_mean: np.ndarray, reps: int = 1000) -> dict:
    """grads [chains, rollouts, P] -> the variance statistics of one weighting."""
    chains, rollouts, size = grads.shape
    flat_grads = grads.reshape(chains * rollouts, size)
    mean = flat_grads.mean(axis=0)
    total = float(np.sum(np.var(flat_grads, axis=0, ddof=1)))  # trace of the covariance over batches
    # bootstrap over chains from per-chain sums: trace = (sum ||g||^2 - ||sum g||^2 / n) / (n - 1)
    rng = np.random.default_rng(0)
    counts = np.stack([np.bincount(rng.integers(0, chains, chains), minlength=chains) for _ in range(reps)])
    sums, squares, n = counts @ grads.sum(axis=1), counts @ np.square(grads).sum(axis=(1, 2)), chains * rollouts
    boot = (squares - np.square(sums).sum(axis=1) / n) / (n - 1)
    # ||E g||^2, unbiased: the squared norm of the sample mean overstates it by trace / n
    norm2 = float(mean @ mean) - total / len(flat_grads)
    cosine = float(mean @ reference_mean / (np.linalg.norm(mean) * np.linalg.norm(reference_mean) + 1e-30))
    return {
        "total_variance": total,
        "total_variance_ci": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        "per_parameter_variance": total / size,
        "mean_gradient_norm2": norm2,
        "noise_to_signal": total / norm2 if norm2 > 0 else None,  # None: no signal resolved
        "cosine_with_gae_mean": cosine,
    }


def measure_variance(env_id: str, chains: int, rollouts: int, seed: int = 0) -> dict:
    config = pjv.Config.preset(env_id)
    start = time.perf_counter()
    trained_config = dataclasses.replace(config, total_steps=TRAIN_STEPS.get(env_id, 100_000))
    trained = pjv.train(trained_config, num_seeds=1, seed=seed)
    at = {}
    for label, params, returns in (
        ("init", _initial_params(config, seed), None),
        ("trained", trained.params, float(trained.metrics["episode_return"][0, -1])),
    ):
        actor, critic = (jax.tree.map(lambda x: x[0], params[k]) for k in ("actor", "critic"))
        grads = gradients(config, actor, critic, jax.random.key(seed + 1), chains, rollouts)
        reference = grads[("gae", "0")].reshape(-1, grads[("gae", "0")].shape[-1]).mean(axis=0)
        reference_std = grads[("gae", "1")].reshape(-1, grads[("gae", "1")].shape[-1]).mean(axis=0)
        at[label] = {
            "training_steps": 0 if label == "init" else trained_config.total_steps,
            "training_return": returns,
            "raw": {w: summarise(grads[(w, "0")], reference) for w in PG_WEIGHTS},
            "standardised": {w: summarise(grads[(w, "1")], reference_std) for w in PG_WEIGHTS},
        }
    return {
        "env_id": env_id, "config": dataclasses.asdict(config), "chains": chains, "rollouts_per_chain": rollouts,
        "batches": chains * rollouts, "seed": seed, "parameters": at,
        "wall_seconds": time.perf_counter() - start, "hardware": hardware(), "git_commit": provenance.git_commit(),
    }


def _initial_params(config: pjv.Config, seed: int) -> dict:
    """The parameters `pjv.train(config, seed=seed)` starts from, with a leading seed axis."""
    agent = program.Agent.build(config)
    hp = program.HyperParams.from_config(config)
    state = jax.vmap(lambda k: program.init(agent, hp, k))(pjv.seed_keys(seed, 1))
    return {"actor": state.actor_params, "critic": state.critic_params}


def measure_curves(env_id: str, num_seeds: int, total_steps: int, names=PG_WEIGHTS, points: int = 40,
                   seed: int = 0, out: dict | None = None) -> dict:
    """Learning curves of the weightings `names`, added to `out` (a record of the same run)."""
    config = dataclasses.replace(pjv.Config.preset(env_id), total_steps=total_steps)
    same = out and out["config"] == json.loads(json.dumps(dataclasses.asdict(config))) and out["num_seeds"] == num_seeds
    out = out if same else {
        "env_id": env_id, "config": dataclasses.asdict(config), "num_seeds": num_seeds, "seed": seed,
        "hardware": hardware(), "git_commit": provenance.git_commit(), "weightings": {}}
    for name in names:
        start = time.perf_counter()
        result = pjv.train(dataclasses.replace(config, pg_weight=name), num_seeds=num_seeds, seed=seed)
        returns = np.asarray(result.metrics["episode_return"])  # [seeds, updates]
        # from the first update after which every seed has finished an episode (the metric is 0 before)
        first = int(np.argmax((np.cumsum(result.metrics["episodes_finished"], axis=1) > 0).all(axis=0)))
        at = np.unique(np.linspace(first, returns.shape[1] - 1, points).astype(int))
        curve = [dataclasses.asdict(stats.bootstrap_ci(returns[:, u], stats.iqm, reps=1000)) for u in at]
        out["weightings"][name] = {
            "env_steps": [(int(u) + 1) * config.batch_size for u in at],
            "iqm_curve": curve,
            "final_return": {k: dataclasses.asdict(v) for k, v in stats.aggregate(returns[:, -1]).items()},
            "final_return_per_seed": returns[:, -1].tolist(),
            "wall_seconds": time.perf_counter() - start,
        }
    return out


def render(records: dict) -> str:
    """The markdown tables: variance at fixed parameters, then the final returns."""
    def ci(x, digits=1):
        return f"{x['point']:.{digits}f} [{x['low']:.{digits}f}, {x['high']:.{digits}f}]"

    lines = ["### Variance of the policy-gradient estimate at fixed parameters", "",
             "| Environment | Parameters | Weights | pg_weight | Total variance [95% CI] | Per-parameter variance "
             "| Noise / signal | cos(mean, GAE's mean) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for env_id, record in records.get("variance", {}).items():
        for label, at in record["parameters"].items():
            where = label if at["training_return"] is None else (
                f"{label} ({at['training_steps']:,} steps, return {at['training_return']:.0f})")
            for kind in ("raw", "standardised"):
                for name, s in at[kind].items():
                    low, high = s["total_variance_ci"]
                    lines.append(
                        f"| {env_id} | {where} | {kind} | `{name}` | {s['total_variance']:.3g} [{low:.3g}, {high:.3g}] "
                        f"| {s['per_parameter_variance']:.3g} | {_num(s['noise_to_signal'])} "
                        f"| {s['cosine_with_gae_mean']:.2f} |")
    lines += ["", "### Training return of each weighting (IQM over seeds, 95% CI)", "",
              "| Environment | Seeds | Env steps / seed | pg_weight | Final return IQM [95% CI] | Wall (s) |",
              "| --- | --- | --- | --- | --- | --- |"]
    for env_id, record in records.get("curves", {}).items():
        for name, w in _ordered(record["weightings"]):
            lines.append(f"| {env_id} | {record['num_seeds']} | {w['env_steps'][-1]:,} | `{name}` "
                         f"| {ci(w['final_return']['iqm'])} | {w['wall_seconds']:.0f} |")
    devices = {hardware_name(r["hardware"]) for part in records.values() for r in part.values()}
    lines += ["", f"Hardware: {', '.join(sorted(devices))}. Produced by `benchmarks/pg_variance.py`."]
    return "\n".join(lines) + "\n"


def _ordered(weightings: dict):
    """(name, record) in the ladder's order, whatever order they were measured in."""
    return [(name, weightings[name]) for name in PG_WEIGHTS if name in weightings]


def _num(x) -> str:
    return "n/a (no signal)" if x is None else f"{x:.3g}"


def plot(records: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs_ = sorted(set(records.get("variance", {})) | set(records.get("curves", {})))
    fig, axes = plt.subplots(2, len(envs_), figsize=(5.5 * len(envs_), 8), squeeze=False)
    colours = dict(zip(PG_WEIGHTS, ("tab:green", "tab:orange", "tab:blue")))
    for col, env_id in enumerate(envs_):
        ax = axes[0, col]
        record = records.get("variance", {}).get(env_id)
        if record:
            groups = [(label, kind) for label in record["parameters"] for kind in ("raw", "standardised")]
            for i, name in enumerate(PG_WEIGHTS):
                values = [record["parameters"][label][kind][name]["noise_to_signal"] or np.nan
                          for label, kind in groups]
                ax.bar(np.arange(len(groups)) + (i - 1) * 0.27, values, 0.27, color=colours[name], label=name)
            ax.set_xticks(np.arange(len(groups)), [f"{label}\n{kind}" for label, kind in groups])
            ax.set_yscale("log")
            ax.set_ylabel("total variance / |mean gradient|^2")
            ax.set_title(f"{env_id}: gradient noise-to-signal ({record['batches']} batches)")
            ax.legend()
        ax = axes[1, col]
        record = records.get("curves", {}).get(env_id)
        if record:
            for name, w in _ordered(record["weightings"]):
                x = np.asarray(w["env_steps"])
                point, low, high = (np.asarray([c[k] for c in w["iqm_curve"]]) for k in ("point", "low", "high"))
                ax.plot(x, point, color=colours[name], label=name)
                ax.fill_between(x, low, high, color=colours[name], alpha=0.2)
            ax.set_xlabel("env steps per seed")
            ax.set_ylabel("training return (IQM, 95% CI)")
            ax.set_title(f"{env_id}: {record['num_seeds']} seeds")
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _save(path: Path, records: dict, what: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2) + "\n")
    print(f"{what}: wrote {path}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("variance", "curves", "render"))
    parser.add_argument("--env", action="append", default=None, help="environment id (repeatable)")
    parser.add_argument("--chains", type=int, default=32, help="variance: independent runs per parameter set")
    parser.add_argument("--rollouts", type=int, default=16, help="variance: measured rollouts (batches) per run")
    parser.add_argument("--num-seeds", type=int, default=16, help="curves: seeds per weighting")
    parser.add_argument("--total-steps", type=int, default=None, help="curves: env steps per seed (default: preset)")
    parser.add_argument("--pg-weight", action="append", choices=PG_WEIGHTS, default=None,
                        help="curves: only these weightings (repeatable; default: all three)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    name = hardware_name(hardware())
    path = args.out / f"{name}-pg-weights.json"
    records = json.loads(path.read_text()) if path.exists() else {}
    for env_id in args.env or []:
        if args.part == "variance":
            records.setdefault("variance", {})[env_id] = measure_variance(env_id, args.chains, args.rollouts)
        elif args.part == "curves":
            steps = args.total_steps or pjv.Config.preset(env_id).total_steps
            curves = records.setdefault("curves", {})
            for weighting in args.pg_weight or PG_WEIGHTS:  # saved after each
                curves[env_id] = measure_curves(env_id, args.num_seeds, steps, (weighting,), out=curves.get(env_id))
                _save(path, records, f"{args.part} {env_id} {weighting}")
            continue
        _save(path, records, f"{args.part} {env_id}")
    if records:
        (args.out / f"{name}-pg-weights.md").write_text(render(records))
        plot(records, args.out / f"{name}-pg-weights.png")
        print(render(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
