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
import os
import signal
import sys
import threading
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
    except OSError as error:  # a directory, no permission
        raise ValueError(f"config: cannot read {path}: {error.strerror or error}") from error
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config: {path} is not valid TOML: {error}") from error


def final_returns(result) -> np.ndarray:
    """The episodic return at the last update of each seed that did not diverge
    (`result.finite_seeds`), [finite seeds]: diverged seeds never enter an aggregate."""
    return result.metrics["episode_return"][result.finite_seeds, -1]


def divergence(result, limit: int = 10) -> str | None:
    """'2 of 8 seeds diverged: seed 3 at update 0, seed 5 at update 12', or None."""
    at = result.diverged_at
    seeds = np.flatnonzero(at >= 0)
    if seeds.size == 0:
        return None
    listed = ", ".join(f"seed {i} at update {at[i]}" for i in seeds[:limit])
    more = f", and {seeds.size - limit} more" if seeds.size > limit else ""
    return f"{seeds.size} of {result.num_seeds} seeds diverged (non-finite metrics or parameters): {listed}{more}"


def summary(result, reps: int = 2000) -> str:
    """The end-of-run table: final returns across seeds (IQM, mean, median with 95%
    stratified-bootstrap CIs), the last evaluation if any, and the timings. Diverged
    seeds are listed and left out of every aggregate (their count is shown)."""
    from purejaxvpg import stats

    final = final_returns(result)
    steps = int(result.metrics["env_steps"][0, -1])
    left_out = result.num_seeds - final.size
    rows = [
        ("environment", result.config.env_id),
        ("seeds", str(result.num_seeds) + (f" ({left_out} diverged, left out below)" if left_out else "")),
        ("env steps per seed", f"{steps:,}"),
    ]
    diverged = divergence(result)
    if diverged:
        rows.append(("diverged", diverged))
    if final.size == 0:
        rows.append(("final return", f"none: all {result.num_seeds} seeds diverged"))
    else:
        agg = stats.aggregate(final, reps=reps)
        rows += [
            ("final return: IQM [95% CI]", _interval(agg["iqm"])),
            ("final return: mean [95% CI]", _interval(agg["mean"])),
            ("final return: min / median / max",
             f"{final.min():.1f} / {np.median(final):.1f} / {final.max():.1f}"),
        ]
    for mode in ("greedy", "stochastic"):
        values = result.eval_metrics.get(f"eval_return_{mode}")
        if values is not None and values.shape[1] > 0 and final.size > 0:
            last = values[result.finite_seeds, -1]
            rows.append((f"last eval, {mode}: IQM [95% CI]", _interval(stats.aggregate(last, reps=reps)["iqm"])))
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
    """config.json's "results": timings, diverged seeds, final returns of the others
    (statistics are null when every seed diverged; no NaN anywhere)."""
    final = final_returns(result)
    at = result.diverged_at
    number = lambda x: float(x) if np.isfinite(x) else None  # noqa: E731
    return {
        "compile_seconds": number(result.compile_seconds),
        "run_seconds": number(result.run_seconds),
        "env_steps_per_second": number(result.env_steps_per_second),
        "updates_done": int(result.metrics["env_steps"].shape[1]),
        "diverged": {
            "count": int((at >= 0).sum()), "of": result.num_seeds,
            "at_update": {str(i): int(at[i]) for i in np.flatnonzero(at >= 0)},  # seed -> update
        },
        "final_return": {
            "seeds": int(final.size),  # the seeds that did not diverge
            **{name: (float(f(final)) if final.size else None)
               for name, f in (("mean", np.mean), ("min", np.min), ("median", np.median), ("max", np.max))},
        },
    }


# flags a resumed run may change: they do not alter what the run computes
RESUME_MAY_CHANGE = ("--checkpoint-every", "--progress / --no-progress")


def _train(args) -> int:
    """A fresh run: every check (config, options, memory estimate, --out) before anything
    is written, the run directory locked for the whole session, and config.json written
    only once the program has compiled; a run that fails or is interrupted before its
    first checkpoint leaves nothing behind that would block the same command."""
    from purejaxvpg import rundir, session

    if args.resume is not None:
        return _resume(args)
    config = config_from_args(args).validate()
    options = session.RunOptions(
        num_seeds=8 if args.num_seeds is None else args.num_seeds,
        seed=0 if args.seed is None else args.seed,
        log_every=args.log_every or 0, checkpoint_every=args.checkpoint_every, progress=args.progress,
    ).validate()
    out = args.out or Path("runs") / f"{config.env_id.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    rundir.check_new_run_dir(out)
    session.check(config, options)  # memory estimate: before the directory exists
    lock = rundir.RunLock(out)
    wrote = []

    def start(done: int) -> None:
        rundir.write_config(out, config, dataclasses.asdict(options))
        wrote.append(out / "config.json")

    def discard() -> None:
        """Nothing to resume: remove what this run wrote, so its --out stays free."""
        from purejaxvpg.checkpoint import steps

        if not steps(out) and not _has_results(out):
            for path in wrote:
                path.unlink(missing_ok=True)
            lock.remove_created()

    try:
        rundir.check_new_run_dir(out)  # again under the lock: a run may have just ended there
        return _session(out, config, options, resume=False, on_start=start, discard=discard)
    except BaseException:
        discard()
        raise
    finally:
        lock.release()


def _resume(args) -> int:
    """`--resume RUN_DIR`: the recorded config and options, only RESUME_MAY_CHANGE may
    differ; the resuming environment is appended to config.json's "resumes"."""
    import json

    from purejaxvpg import rundir, session
    from purejaxvpg.checkpoint import steps

    given = ["--" + f.name.replace("_", "-") for f in dataclasses.fields(Config) if hasattr(args, f.name)]
    given += [flag for flag, value in (("--num-seeds", args.num_seeds), ("--seed", args.seed),
                                       ("--out", args.out), ("--config", args.config),
                                       ("--log-every", args.log_every)) if value is not None]
    given += ["--preset"] if args.preset else []
    if given:
        raise ValueError(
            f"resume: {', '.join(given)} cannot be combined with --resume: a resumed run keeps the "
            f"config and options recorded in {args.resume}/config.json (only {', '.join(RESUME_MAY_CHANGE)} "
            "may change). To train something else, leave out --resume and give a new --out."
        )
    out = args.resume
    lock = _lock_existing(out, "resume")  # first: a run still compiling has no config.json yet
    try:
        config, run = rundir.read_config(out)
        known = {f.name for f in dataclasses.fields(session.RunOptions)}
        changed = {} if args.checkpoint_every is None else {"checkpoint_every": args.checkpoint_every}
        options = session.RunOptions(**{**{k: v for k, v in run.items() if k in known},
                                        **changed, "progress": args.progress}).validate()
        saved, total = steps(out), config.num_updates
        if saved and saved[-1] >= total and _has_results(out) and "results" in json.loads(
            (out / "config.json").read_text()
        ):
            print(f"purejaxvpg: {out} is finished (update {total} of {total}): nothing to resume; "
                  "its results are in config.json, metrics.csv and metrics.npz.", file=sys.stderr)
            return 0
        if saved:
            print(f"purejaxvpg: resuming {out} from its newest checkpoint (update {saved[-1]} of {total})",
                  file=sys.stderr)
        else:
            print(f"purejaxvpg: {out} has no checkpoint: training it from update 0", file=sys.stderr)
        return _session(out, config, options, resume=True,
                        on_start=lambda done: rundir.record_resume(out, done, changed), discard=None)
    finally:
        lock.release()


def _lock_existing(run_dir: Path, name: str):
    """The lock of an existing run directory. Locked before config.json is read (a run
    still compiling has none yet); a directory that never held a run is refused unlocked."""
    from purejaxvpg import rundir

    if not (run_dir / rundir.LOCK_NAME).is_file():
        rundir.read_config(run_dir)  # raises when it is no run directory, naming the problem
    return rundir.RunLock(run_dir, name=name, create=False)


def _has_results(out: Path) -> bool:
    return (out / "metrics.npz").exists()


def _session(out: Path, config: Config, options, resume: bool, on_start, discard) -> int:
    """Run the session; write metrics.npz/.csv and config.json's results before the final
    checkpoint, then print, then plot: what can fail last loses nothing."""
    from purejaxvpg import rundir, session
    from purejaxvpg.checkpoint import steps

    def write_results(result) -> None:
        rundir.write_metrics(out, result)
        results = _results(result)
        if result.updates_trained == 0:  # nothing trained now: no timings to report
            results.update(compile_seconds=None, run_seconds=None, env_steps_per_second=None)
        rundir.write_results(out, results)

    try:
        result = session.run(config, options, out, resume=resume, on_start=on_start,
                             on_result=write_results)
    except KeyboardInterrupt as stop:
        saved = steps(out)
        if saved:
            print(f"purejaxvpg: interrupted at update {saved[-1]}; resume with --resume {out}", file=sys.stderr)
        elif resume:
            print(f"purejaxvpg: interrupted before the first checkpoint: nothing to resume "
                  f"(--resume {out} trains it from update 0)", file=sys.stderr)
        else:
            discard()
            print("purejaxvpg: interrupted before the first checkpoint: nothing to resume "
                  "(nothing was kept; run the same command to start again)", file=sys.stderr)
        return getattr(stop, "exit_code", 130)
    except OSError as error:
        if not _has_results(out):
            raise
        print(f"purejaxvpg: error: {error}\n(the run finished and its metrics were written first: "
              f"{out}/metrics.npz, metrics.csv)", file=sys.stderr)
        return 1
    print(summary(result))
    rundir.write_plot(out, result)
    print(f"wrote {out}/: config.json, metrics.csv, metrics.npz, learning_curve.png, checkpoints/")
    return 0


def _eval(args) -> int:
    from purejaxvpg import session

    from purejaxvpg.stats import Interval

    lock = _lock_existing(args.run_dir, "run_dir")
    try:
        record = session.evaluate_run(args.run_dir, episodes=args.episodes, seed=args.seed)
    finally:
        lock.release()
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

    from purejaxvpg.config import require_int
    from purejaxvpg.keys import MAX_SEED

    config = config_from_args(args).validate()
    require_int("num_seeds", args.num_seeds, low=1)
    require_int("seed", args.seed, low=0, high=MAX_SEED)
    grid = sweep.parse_grid(args.grid or [])
    ranges = sweep.parse_ranges(args.range or [])
    if bool(grid) == bool(ranges):
        raise ValueError("sweep: give either --grid NAME=v1,v2,... or --samples N with --range NAME=low:high[:log].")
    settings = sweep.grid_settings(config, grid) if grid else sweep.random_settings(
        config, ranges, args.samples, args.seed
    )
    if args.out is not None:  # before the work, not after it
        sweep.writable_dir(args.out)
    result = sweep.run(config, settings, num_seeds=args.num_seeds, seed=args.seed)
    print(result.table())
    if args.out is not None:
        paths = result.write(args.out)
        print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _bench(args) -> int:
    from purejaxvpg import bench

    presets = args.preset or list(bench.PRESETS)
    unknown = [p for p in presets if p not in bench.PRESETS]
    if unknown:
        raise ValueError(f"preset: unknown {unknown}; allowed: {list(bench.PRESETS)}")
    seeds = bench.parse_seeds(args.num_seeds)
    path = bench.run(presets, seeds, args.out)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="purejaxvpg", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train seeds in one jitted, vmapped program, with progress and checkpoints")
    # None defaults: --resume must tell a flag given from one left out
    train.add_argument("--num-seeds", type=int, default=None, help="seeds trained at once (default: 8)")
    train.add_argument("--seed", type=int, default=None, help="base seed (default: 0)")
    train.add_argument("--out", type=Path, default=None,
                       help="run directory (default: runs/<env-id>-<date>-<time>)")
    train.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                       help="continue an interrupted run from its newest intact checkpoint (from update 0, "
                            "with a message, if it has none); its config and options are read from "
                            "RUN_DIR/config.json and only --checkpoint-every and --progress may be given with it")
    train.add_argument("--log-every", type=int, default=None,
                       help="updates per block between progress refreshes (default: about 50 blocks per run)")
    train.add_argument("--checkpoint-every", type=int, default=None,
                       help="updates between checkpoints (default: about every tenth of the run, in whole "
                            "blocks, so a killed run loses at most ~10%%; 0: only at the end). Ctrl-C and "
                            "SIGTERM checkpoint the last finished block before exiting")
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
    sweep.add_argument("--out", type=Path, default=None, help="write sweep.json (every run) and sweep.csv (one row per setting: its "
                       "hyperparameters, diverged runs, IQM / mean / median with 95%% CIs) into this folder")
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
    """Exit codes: 0 done, 2 bad input (one line naming the argument), 1 a failure (out of
    memory, a failed write, closed output), 130 / 143 interrupted by SIGINT / SIGTERM."""
    args = build_parser().parse_args(argv)
    handler = {"train": _train, "eval": _eval, "sweep": _sweep, "bench": _bench}[args.command]
    previous = _sigterm_interrupts()
    try:
        return handler(args)
    except ValueError as error:
        return _error(str(error), 2)
    except KeyboardInterrupt as stop:  # outside a session's blocks (those report themselves)
        print("purejaxvpg: interrupted", file=sys.stderr)
        return getattr(stop, "exit_code", 130)
    except BrokenPipeError:  # stdout closed early, e.g. `| head -3`
        _detach_stdout()
        return _error("output closed early (broken pipe); files were written before the output", 1)
    except OSError as error:
        return _error(f"{error}", 1)
    except Exception as error:
        if "RESOURCE_EXHAUSTED" not in str(error):
            raise  # a bug: keep its traceback
        first = str(error).strip().splitlines()[0][:300]
        return _error(
            f"out of device memory ({first}). Fewer seeds at once (--num-seeds), fewer environments "
            "per seed (--num-envs) or fewer evaluation episodes (--eval-episodes; --episodes for eval) "
            "need less; purejaxvpg.train() can also run seeds in sequential chunks.", 1)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _error(message: str, code: int) -> int:
    print(f"purejaxvpg: error: {message}", file=sys.stderr)
    return code


def _sigterm_interrupts():
    """SIGTERM raises session.Interrupted like Ctrl-C raises KeyboardInterrupt (a session
    installs its own handlers while it trains); returns the previous handler."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    ):
        return None

    def interrupt(signum, frame):
        from purejaxvpg.session import Interrupted

        raise Interrupted(signum)

    return signal.signal(signal.SIGTERM, interrupt)


def _detach_stdout() -> None:
    """Point stdout at /dev/null so flushing it at exit cannot raise again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
