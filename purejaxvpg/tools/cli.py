"""Command line: `purejaxvpg train|eval|sweep|bench|export|compare|plot|merge|config`.

  purejaxvpg train --env-id CartPole-v1 --num-seeds 8 [--out RUN_DIR] [--config run.toml]
  purejaxvpg train --resume RUN_DIR
  purejaxvpg eval RUN_DIR [--episodes 32]
  purejaxvpg sweep --env-id CartPole-v1 --grid policy_lr=3e-4,1e-3,3e-3 --num-seeds 16
  purejaxvpg bench [--scenario cartpole-500k] [--num-seeds 1,16,256] [--devices 1,2,4,8]
  purejaxvpg export RUN_DIR [LABEL=RUN_DIR ...] --format rliable|csv|parquet [--out FILE]
  purejaxvpg compare LABEL=RUN_DIR ... [--baseline LABEL] [--out DIR]  (aggregates, P(improvement), figures)
  purejaxvpg plot LABEL=RUN_DIR ... [--metric M] [--smooth N] [--out fig.pdf]  (IQM curves, a panel per env)
  purejaxvpg merge RUN_DIR RUN_DIR ... --out RUN_DIR   (runs of --seed-start ranges as one run)
  purejaxvpg config RUN_DIR [--format toml|json]        (a run's config; `--config` reads it back)

Every Config field is a flag (`--policy-lr 1e-3`, `--hidden-sizes 64,64`,
`--no-anneal-lr`, `--max-grad-norm none`) and a key of the `--config` file (TOML, or a
run's config.json);
`--help` lists them with their defaults.

The flags of every command are in parser.py; `train` lives in train_command.py.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from pathlib import Path

from purejaxvpg.report import summary
from purejaxvpg.tools import flags
from purejaxvpg.tools.parser import build_parser


def _eval(args) -> int:
    from purejaxvpg.host import policy
    from purejaxvpg.host.runlock import lock_existing
    from purejaxvpg.report.stats import Interval

    lock = lock_existing(args.run_dir, "run_dir")
    try:
        record = policy.evaluate_run(args.run_dir, episodes=args.episodes, seed=args.seed,
                                     devices=flags.checked_devices(args.devices), max_steps=args.max_steps)
    finally:
        lock.release()
    rows = [("run", record["run_dir"]), ("environment", record["env_id"]),
            ("seeds x episodes", f"{record['num_seeds']} x {record['episodes_per_seed']}"),
            ("steps per episode, at most", f"{record['max_steps']:,}"),
            ("checkpoint (updates done)", str(record["updates_done"]))]
    for mode in ("greedy", "stochastic"):
        r = record[mode]
        rows += [(f"{mode}: {name} [95% CI]", summary.interval_text(Interval(**r[name]))) for name in ("iqm", "mean")]
        rows.append((f"{mode}: median / mean length", f"{r['median']['point']:.1f} / {r['mean_length']:.1f}"))
    print(summary.table(rows))
    return 0


def _sweep(args) -> int:
    from purejaxvpg.algo.prng import MAX_SEED
    from purejaxvpg.checks import require_int
    from purejaxvpg.paths import writable_folder
    from purejaxvpg.tools import sweep

    config = flags.config_from_args(args).validate()
    require_int("num_seeds", args.num_seeds, low=1)
    require_int("seed", args.seed, low=0, high=MAX_SEED)
    devices = flags.checked_devices(args.devices)
    sweep.check_metric(config, args.metric)
    grid = sweep.parse_grid(args.grid or [])
    ranges = sweep.parse_ranges(args.range or [])
    if bool(grid) == bool(ranges):
        raise ValueError("sweep: give either --grid NAME=v1,v2,... or --samples N with --range NAME=low:high[:log].")
    count = math.prod(len(values) for values in grid.values()) if grid else args.samples
    if count >= 1:  # a bad --samples is named by random_settings
        sweep.check_size(config, count, args.num_seeds)
    if args.out is not None:  # before the work, not after it
        sweep.check_new_out(args.out)
    runs = f"{count:,} settings x {args.num_seeds} seeds = {count * args.num_seeds:,} runs"
    print(f"sweep: {runs}, {config.num_updates} updates each", file=sys.stderr)

    def checking(done: int, total: int) -> None:
        if total >= sweep.PROGRESS_EVERY:  # a small sweep is checked in well under a second
            print(f"sweep: checked {done:,} of {total:,} settings", file=sys.stderr)

    def training(done: int, total: int, seconds: float) -> None:
        what = f"compiled in {seconds:.1f} s; training" if done == 0 else f"trained {done:,} of {total:,} runs"
        print(f"sweep: {what}" + (f" ({seconds:.1f} s)" if done else ""), file=sys.stderr)

    settings = sweep.grid_settings(config, grid, checking) if grid else sweep.random_settings(
        config, ranges, args.samples, args.seed, checking
    )
    if args.out is not None:  # made only once every setting is valid
        writable_folder(args.out)
    result = sweep.run(config, settings, num_seeds=args.num_seeds, seed=args.seed, devices=devices,
                       on_chunk=training, rank_by=args.rank, metric=args.metric)
    print(result.table())
    if args.out is not None:
        paths = result.write(args.out)
        print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _bench(args) -> int:
    from purejaxvpg.tools import bench

    scenarios = args.scenario or list(bench.DEFAULT_SCENARIOS)
    unknown = [name for name in scenarios if name not in bench.SCENARIOS]
    if unknown:
        raise ValueError(f"scenario: unknown {unknown}; allowed: {list(bench.SCENARIOS)}")
    seeds = bench.parse_seeds(args.num_seeds)
    path = bench.run(scenarios, seeds, args.out, devices=bench.parse_devices(args.devices))
    print(f"wrote {path}")
    return 0


def _export(args) -> int:
    """rliable score arrays (.npz + .json) or the long table (CSV, Parquet) of finished runs."""
    from purejaxvpg.tools import export

    metrics = [m.strip() for m in (args.metric or export.DEFAULT_METRIC).split(",") if m.strip()]
    at = args.at or ("final" if args.format == "rliable" else "all")
    export.check_options(args.format, metrics, at)
    out = args.out or {"rliable": Path("scores.npz"), "parquet": Path("metrics.parquet")}.get(args.format)
    if str(out) == "-" and args.format != "csv":
        raise ValueError(f"out: {args.format} is binary: give a file, not - (stdout).")
    if out is not None and str(out) != "-":
        export.check_out(out, args.format, args.force)
    if args.format == "parquet":
        export.parquet_library()  # before reading the runs
    runs = export.load_arguments(args.run_dirs)
    if args.metric is None:
        metrics = [export.default_metric(runs)]
    print(f"metric: {', '.join(metrics)}", file=sys.stderr)
    if args.format == "rliable":
        data = export.rliable_scores(runs, metrics[0], at)
    else:
        data = export.long_table(runs, metrics, at)
    if out is None or str(out) == "-":
        export.write_csv(data, sys.stdout)
        return 0
    paths = export.write(args.format, data, out)
    print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0


def _compare(args) -> int:
    from purejaxvpg.tools import compare

    return compare.command(args)


def _plot(args) -> int:
    from purejaxvpg.tools import plot

    return plot.command(args)


def _merge(args) -> int:
    from purejaxvpg.tools import merge

    return merge.command(args)


def _config(args) -> int:
    """Print (or write) a run's or a file's Config: TOML that `--config` reads back equal."""
    import dataclasses
    import json

    from purejaxvpg.config import Config
    from purejaxvpg.tools import config_file

    config = Config.from_dict(config_file.read(args.source))
    if args.format == "toml":
        text = config_file.to_toml(config, header=f"purejaxvpg config of {args.source}\n"
                                                  "read back with: purejaxvpg train --config THIS_FILE")
    else:
        text = json.dumps(dataclasses.asdict(config), indent=1) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    if args.out.exists():
        raise ValueError(f"out: {args.out} exists; give a new file.")
    try:
        args.out.write_text(text)
    except OSError as error:
        raise ValueError(f"out: cannot write {args.out}: {error.strerror or error}") from error
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 2 bad input (one line naming the argument), 1 a failure (out of
    memory, a failed write, closed output), 130 / 143 interrupted by SIGINT / SIGTERM."""
    from purejaxvpg.tools import train_command  # it reads flags through this module

    args, extra = build_parser().parse_known_args(argv)
    if extra:  # named with the command whose --help lists what it does take
        return _error(f"unrecognized arguments: {' '.join(extra)} (`purejaxvpg {args.command} --help` "
                      "lists what it takes)", 2)
    handler = {"train": train_command.train, "eval": _eval, "sweep": _sweep, "bench": _bench,
               "export": _export, "merge": _merge, "config": _config,
               "compare": _compare, "plot": _plot}[args.command]
    from purejaxvpg.host.watchdog import Watchdog

    previous = _signals_interrupt()
    try:
        if args.command in ("train", "eval", "sweep") or getattr(args, "compile_cache", None) is not None:
            from purejaxvpg.host import compile_cache

            compile_cache.enable(args.compile_cache)  # before any compile: JAX opens its cache once
        with Watchdog():  # a signal stops the process even inside a long compiled call
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
        from purejaxvpg.host import distributed

        if distributed.lost_process(error):  # a process of a distributed run died: exits now
            distributed.stopped(error)
        if "RESOURCE_EXHAUSTED" not in str(error):
            raise  # a bug: keep its traceback
        first = str(error).strip().splitlines()[0][:300]
        return _error(
            f"out of device memory ({first}). Fewer seeds at once (--num-seeds), fewer environments "
            "per seed (--num-envs) or fewer evaluation episodes (--eval-episodes; --episodes for eval) "
            "need less; purejaxvpg.train() can also run seeds in sequential chunks.", 1)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _error(message: str, code: int) -> int:
    print(f"purejaxvpg: error: {message}", file=sys.stderr)
    return code


def _signals_interrupt() -> dict:
    """SIGINT and SIGTERM raise watchdog.Interrupted (a KeyboardInterrupt: exit 130 / 143;
    a session installs its own handlers while it trains), also where Python would drop the
    exception (watchdog.interrupt); returns the previous handlers. A signal the process was
    told to ignore stays ignored. The handler imports nothing: it may run in the middle of
    an import."""
    from purejaxvpg.host.watchdog import interrupt

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)
            if signal.getsignal(s) is not signal.SIG_IGN}


def _detach_stdout() -> None:
    """Point stdout at /dev/null so flushing it at exit cannot raise again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _leave_distributed_run(wait_seconds: float = 30.0) -> None:
    """Before os._exit: pass jax.distributed's shutdown barrier, as a normal exit would. Without
    it the coordinator (process 0) could exit while another process still polled it, which
    jax answers by aborting that process (exit -6 instead of 143: a CI flake). Waits at most
    `wait_seconds` (a lost process never arrives) and gives up on a second signal."""
    jax = sys.modules.get("jax")
    if jax is None or not jax.distributed.is_initialized():
        return

    def shutdown():
        try:
            jax.distributed.shutdown()
        except Exception:  # a lost process: the others are ending anyway
            pass

    waiter = threading.Thread(target=shutdown, daemon=True)
    waiter.start()
    try:
        waiter.join(wait_seconds)
    except BaseException:  # "send it again to stop at once"
        pass


def run() -> int:
    """The console script: `main`, and after an interruption (exit 130 / 143) an exit that
    skips the interpreter's finalization. A signal can stop jax in the middle of a compile,
    and tearing down its half-used state at exit then crashed the process (SIGSEGV after
    its last line, in 1 of 5 SIGTERMs 4-6 s into a `train`); every file is written and
    closed by the time main returns."""
    code = main()
    if code in (130, 143):
        _leave_distributed_run()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(run())
