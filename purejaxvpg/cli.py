"""Command line: `purejaxvpg train --env-id CartPole-v1 --num-seeds 8 [--out DIR]`.

Every Config field is a flag (`--policy-lr 1e-3`, `--hidden-sizes 64,64`,
`--no-anneal-lr`, `--max-grad-norm none`); `--help` lists them with their defaults.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path

import numpy as np

from purejaxvpg.config import Config


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
    """Config with every flag the user gave; the rest keep their defaults.

    Config flags default to argparse.SUPPRESS, so only flags on the command line are in
    `args` (which lets `--max-grad-norm none` set None).
    """
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)}
    return Config(**given)


def write_run(out: Path, result) -> None:
    """config.json (with versions and device) and metrics.csv (one row per seed and update)."""
    import jax

    out.mkdir(parents=True, exist_ok=True)
    final = result.metrics["episode_return"][:, -1]
    info = {
        "config": dataclasses.asdict(result.config),
        "num_seeds": result.num_seeds,
        "compile_seconds": result.compile_seconds,
        "run_seconds": result.run_seconds,
        "env_steps_per_second": result.env_steps_per_second,
        "final_return": {
            "mean": float(final.mean()),
            "min": float(final.min()),
            "median": float(np.median(final)),
            "max": float(final.max()),
        },
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
    }
    (out / "config.json").write_text(json.dumps(info, indent=2) + "\n")
    names = list(result.metrics)
    with open(out / "metrics.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seed", "update", *names])
        num_updates = result.metrics[names[0]].shape[1]
        for seed in range(result.num_seeds):
            for update in range(num_updates):
                writer.writerow(
                    [seed, update, *(result.metrics[n][seed, update].item() for n in names)]
                )


def summary(result) -> str:
    """A short table: final-update return across seeds, and the timings."""
    final = result.metrics["episode_return"][:, -1]
    steps = result.metrics["env_steps"][0, -1]
    rows = [
        ("environment", result.config.env_id),
        ("seeds", str(result.num_seeds)),
        ("env steps per seed", f"{steps:,}"),
        ("final return: mean", f"{final.mean():.1f}"),
        ("final return: min / median / max",
         f"{final.min():.1f} / {np.median(final):.1f} / {final.max():.1f}"),
        ("compile time", f"{result.compile_seconds:.1f} s"),
        ("run time (compile excluded)", f"{result.run_seconds:.1f} s"),
        ("env steps / s (all seeds)", f"{result.env_steps_per_second:,.0f}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="purejaxvpg", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="train seeds in one jitted, vmapped call")
    train_parser.add_argument("--num-seeds", type=int, default=8, help="seeds trained at once (default: 8)")
    train_parser.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    train_parser.add_argument("--out", type=Path, default=None, help="run directory for config.json and metrics.csv")
    _add_config_flags(train_parser)
    bench_parser = commands.add_parser("bench", help="throughput across seeds and presets")
    bench_parser.add_argument("--preset", action="append", default=None,
                              help="cartpole-500k or defaults; repeat for several (default: both)")
    bench_parser.add_argument("--num-seeds", default="1,16,256,1024,4096,8192",
                              help="comma-separated seed counts (default: 1,16,256,1024,4096,8192)")
    bench_parser.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                              help="folder for <hardware>-throughput.json and .png")
    args = parser.parse_args(argv)

    if args.command == "bench":
        from purejaxvpg import bench

        presets = args.preset or list(bench.PRESETS)
        unknown = [p for p in presets if p not in bench.PRESETS]
        if unknown:
            print(f"purejaxvpg: error: preset: unknown {unknown}; allowed: {list(bench.PRESETS)}", file=sys.stderr)
            return 2
        seeds = [int(x) for x in args.num_seeds.split(",")]
        path = bench.run(presets, seeds, args.out)
        print(f"wrote {path}")
        return 0

    from purejaxvpg.train import train

    try:
        config = config_from_args(args).validate()
        result = train(config, num_seeds=args.num_seeds, seed=args.seed)
    except ValueError as error:
        print(f"purejaxvpg: error: {error}", file=sys.stderr)
        return 2
    print(summary(result))
    if args.out is not None:
        write_run(args.out, result)
        print(f"wrote {args.out / 'config.json'} and {args.out / 'metrics.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
