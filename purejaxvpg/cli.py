"""Command line: `purejaxvpg train|eval|sweep|bench`.

  purejaxvpg train --env-id CartPole-v1 --num-seeds 8 [--out RUN_DIR] [--config run.toml]
  purejaxvpg train --resume RUN_DIR
  purejaxvpg eval RUN_DIR [--episodes 32]
  purejaxvpg sweep --env-id CartPole-v1 --grid policy_lr=3e-4,1e-3,3e-3 --num-seeds 16
  purejaxvpg bench [--preset cartpole-500k] [--num-seeds 1,16,256]

Every Config field is a flag (`--policy-lr 1e-3`, `--hidden-sizes 64,64`,
`--no-anneal-lr`, `--max-grad-norm none`) and a key of the `--config` TOML file;
`--help` lists them with their defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import types
import typing
from pathlib import Path

import numpy as np

from purejaxvpg.config import PRESETS, SWEEPABLE, Config


def _parse_optional_float(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def _parse_int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from error


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(Config)
    group = parser.add_argument_group("configuration (every purejaxvpg.Config field)")
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        hint = hints[field.name]
        doc = f"{field.metadata.get('doc', '')} (default: {field.default})"
        if hint is bool:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=doc
            )
            continue
        if hint in (int, float, str):
            kind = hint
        elif hint == tuple[int, ...]:
            kind = _parse_int_tuple
        elif isinstance(hint, types.UnionType) and set(typing.get_args(hint)) == {float, type(None)}:
            kind = _parse_optional_float
        else:  # a new field type must be taught to the parser, not silently dropped
            raise TypeError(f"cli: no flag parser for Config.{field.name}: {hint}")
        group.add_argument(
            flag, type=kind, default=argparse.SUPPRESS, metavar=field.name.upper(), help=doc
        )


def config_from_args(args: argparse.Namespace) -> Config:
    """Config from, by precedence: flags on the command line, the `--config` TOML file,
    the shipped preset for the env id (with `--preset`), the defaults.

    Config flags default to argparse.SUPPRESS, so only flags on the command line are in
    `args` (which lets `--max-grad-norm none` set None).
    """
    values: dict = {}
    if getattr(args, "config", None) is not None:
        values.update(read_toml(args.config))
    values.update(
        {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)}
    )
    if getattr(args, "preset", False):
        values = {**PRESETS.get(values.get("env_id", Config.env_id), {}), **values}
    return Config.from_dict(values)


def read_toml(path: Path) -> dict:
    """Config fields from a TOML file: top-level keys named like the Config fields."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as error:
        raise ValueError(f"config: no such file {path}") from error
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config: {path} is not valid TOML: {error}") from error


def final_returns(result) -> np.ndarray:
    """Each seed's episodic return at the last update, [num_seeds]."""
    return result.metrics["episode_return"][:, -1]


def summary(result, reps: int = 2000) -> str:
    """The end-of-run table: final returns across seeds (IQM, mean, median with 95%
    stratified-bootstrap CIs), the last evaluation if any, and the timings."""
    from purejaxvpg import stats

    final = final_returns(result)
    steps = int(result.metrics["env_steps"][0, -1])
    agg = stats.aggregate(final, reps=reps)
    rows = [
        ("environment", result.config.env_id),
        ("seeds", str(result.num_seeds)),
        ("env steps per seed", f"{steps:,}"),
        ("final return: IQM [95% CI]", _interval(agg["iqm"])),
        ("final return: mean [95% CI]", _interval(agg["mean"])),
        ("final return: min / median / max",
         f"{final.min():.1f} / {np.median(final):.1f} / {final.max():.1f}"),
    ]
    for mode in ("greedy", "stochastic"):
        values = result.eval_metrics.get(f"eval_return_{mode}")
        if values is not None and values.shape[1] > 0:
            rows.append((f"last eval, {mode}: IQM [95% CI]", _interval(stats.aggregate(values[:, -1], reps=reps)["iqm"])))
    rows += [
        ("compile time", f"{result.compile_seconds:.1f} s"),
        ("run time (compile excluded)", f"{result.run_seconds:.1f} s"),
        ("env steps / s (all seeds)", f"{result.env_steps_per_second:,.0f}"),
    ]
    return table(rows)


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _interval(interval) -> str:
    return f"{interval.point:.1f} [{interval.low:.1f}, {interval.high:.1f}]"


def _results(result) -> dict:
    final = final_returns(result)
    out = {
        "compile_seconds": result.compile_seconds,
        "run_seconds": result.run_seconds,
        "env_steps_per_second": result.env_steps_per_second,
        "updates_done": int(result.metrics["env_steps"].shape[1]),
        "final_return": {
            "mean": float(final.mean()), "min": float(final.min()),
            "median": float(np.median(final)), "max": float(final.max()),
        },
    }
    return out


def _train(args) -> int:
    from purejaxvpg import rundir, session

    if args.resume is not None:
        config, run = rundir.read_config(args.resume)
        options = session.RunOptions(**{**run, "progress": args.progress})
        out = args.resume
    else:
        config = config_from_args(args).validate()
        options = session.RunOptions(
            num_seeds=args.num_seeds, seed=args.seed, log_every=args.log_every,
            checkpoint_every=args.checkpoint_every, progress=args.progress,
        ).validate()
        out = args.out or Path("runs") / f"{config.env_id.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
        if (out / "config.json").exists():
            raise ValueError(f"out: {out} already holds a run; resume it with --resume {out} or pick another --out.")
    run = dataclasses.asdict(options)
    rundir.write_config(out, config, run)
    result = session.run(config, options, out, resume=args.resume is not None)
    print(summary(result))
    rundir.write_config(out, config, run, _results(result))
    paths = rundir.write_metrics(out, result)
    print(f"wrote {out}/: config.json, {', '.join(p.name for p in paths)}, checkpoints/")
    return 0


def _eval(args) -> int:
    from purejaxvpg import session

    from purejaxvpg.stats import Interval

    record = session.evaluate_run(args.run_dir, episodes=args.episodes, seed=args.seed)
    rows = [("run", record["run_dir"]), ("environment", record["env_id"]),
            ("seeds x episodes", f"{record['num_seeds']} x {record['episodes_per_seed']}"),
            ("checkpoint (updates done)", str(record["updates_done"]))]
    for mode in ("greedy", "stochastic"):
        r = record[mode]
        rows += [(f"{mode}: {name} [95% CI]", _interval(Interval(**r[name]))) for name in ("iqm", "mean")]
        rows.append((f"{mode}: median / mean length", f"{r['median']['point']:.1f} / {r['mean_length']:.1f}"))
    print(table(rows))
    return 0


def _sweep(args) -> int:
    from purejaxvpg import sweep

    config = config_from_args(args).validate()
    grid = sweep.parse_grid(args.grid or [])
    ranges = sweep.parse_ranges(args.range or [])
    if bool(grid) == bool(ranges):
        raise ValueError("sweep: give either --grid NAME=v1,v2,... or --samples N with --range NAME=low:high[:log].")
    settings = sweep.grid_settings(config, grid) if grid else sweep.random_settings(
        config, ranges, args.samples, args.seed
    )
    result = sweep.run(config, settings, num_seeds=args.num_seeds, seed=args.seed)
    print(result.table())
    if args.out is not None:
        path = result.write(args.out)
        print(f"wrote {path}")
    return 0


def _bench(args) -> int:
    from purejaxvpg import bench

    presets = args.preset or list(bench.PRESETS)
    unknown = [p for p in presets if p not in bench.PRESETS]
    if unknown:
        raise ValueError(f"preset: unknown {unknown}; allowed: {list(bench.PRESETS)}")
    seeds = [int(x) for x in args.num_seeds.split(",")]
    path = bench.run(presets, seeds, args.out)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="purejaxvpg", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train seeds in one jitted, vmapped program, with progress and checkpoints")
    train.add_argument("--num-seeds", type=int, default=8, help="seeds trained at once (default: 8)")
    train.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    train.add_argument("--out", type=Path, default=None,
                       help="run directory (default: runs/<env-id>-<date>-<time>)")
    train.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                       help="continue an interrupted run from its newest checkpoint (its config and options are read from RUN_DIR)")
    train.add_argument("--log-every", type=int, default=0,
                       help="updates between progress refreshes (default: 0 = about 50 refreshes per run)")
    train.add_argument("--checkpoint-every", type=int, default=0,
                       help="updates between checkpoints (default: 0 = only the final checkpoint)")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                       help="progress bar on stderr (default: on)")
    _add_config_source_flags(train)
    _add_config_flags(train)

    evaluate = commands.add_parser("eval", help="greedy and stochastic evaluation episodes of a trained run")
    evaluate.add_argument("run_dir", type=Path, help="a run directory written by `purejaxvpg train`")
    evaluate.add_argument("--episodes", type=int, default=32, help="episodes per seed for each policy (default: 32)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes (default: 0)")

    sweep = commands.add_parser("sweep", help="a grid or random sample of hyperparameters x seeds in one jitted call")
    sweep.add_argument("--grid", action="append", metavar="NAME=V1,V2,...",
                       help=f"values of one hyperparameter; repeat for a product grid. NAME in {', '.join(SWEEPABLE)}")
    sweep.add_argument("--samples", type=int, default=0, help="random settings drawn from the --range flags")
    sweep.add_argument("--range", action="append", metavar="NAME=LOW:HIGH[:log]",
                       help="sampling range of one hyperparameter (log: log-uniform)")
    sweep.add_argument("--num-seeds", type=int, default=8, help="seeds per setting (default: 8)")
    sweep.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    sweep.add_argument("--out", type=Path, default=None, help="write sweep.json and sweep.csv into this folder")
    _add_config_source_flags(sweep)
    _add_config_flags(sweep)

    bench = commands.add_parser("bench", help="throughput across seeds and presets")
    bench.add_argument("--preset", action="append", default=None,
                       help="a preset of purejaxvpg.bench.PRESETS; repeat for several (default: all)")
    bench.add_argument("--num-seeds", default="1,16,256,1024,4096,8192",
                       help="comma-separated seed counts (default: 1,16,256,1024,4096,8192)")
    bench.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                       help="folder for <hardware>-throughput.json and .png")
    return parser


def _add_config_source_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="FILE.toml",
                        help="Config fields from a TOML file (top-level keys named like the fields); flags override it")
    parser.add_argument("--preset", action="store_true",
                        help="start from the shipped config for --env-id (purejaxvpg.config.PRESETS)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"train": _train, "eval": _eval, "sweep": _sweep, "bench": _bench}[args.command]
    try:
        return handler(args)
    except ValueError as error:
        print(f"purejaxvpg: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
