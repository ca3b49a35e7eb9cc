"""`purejaxvpg train` and `train --resume`: a run directory's life around a session.

Every check (config, options, memory estimate, --out) comes before anything is written;
the directory is locked for the whole session; the results are written before anything
that can fail; an interrupted run says how to resume it.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from pathlib import Path

from purejaxvpg.config import Config
from purejaxvpg.host.library_log import LOG_NAME, LibraryLog
from purejaxvpg.report import summary
from purejaxvpg.tools import flags

# flags a resumed run may change: they do not alter what the run computes
RESUME_MAY_CHANGE = ("--checkpoint-every", "--progress / --no-progress", "--log", "--wandb-group", "--devices")
# what a fresh run writes into its directory (besides the lock, RunLock's): a run that
# ends before its first checkpoint removes those of them it created, and nothing else
RUN_WRITES = ("config.json", "metrics.csv", "metrics.npz", "learning_curve.png", "checkpoints", "chunks",
              "tensorboard", "wandb-run-id", LOG_NAME)


def train(args) -> int:
    """A fresh run: every check (config, options, memory estimate, --out) before anything
    is written, the run directory locked for the whole session, and config.json written
    only once the program has compiled; a run that fails or is interrupted before its
    first checkpoint leaves nothing behind that would block the same command."""
    join_distributed(args)  # before anything uses a device (importing the environments does)
    from purejaxvpg.host import distributed, loggers, rundir, runlock, seed_ranges, session, watchdog

    if args.resume is not None:
        return resume(args)
    config = flags.config_from_args(args).validate()
    log = loggers.parse(args.log)
    options = session.RunOptions(
        num_seeds=8 if args.num_seeds is None else args.num_seeds,
        seed=0 if args.seed is None else args.seed,
        seed_start=0 if args.seed_start is None else args.seed_start,
        log_every=args.log_every or 0, checkpoint_every=args.checkpoint_every,
        progress=args.progress is not False,
        devices=flags.checked_devices(args.devices),
        chunk_size=args.chunk_size,
    ).validate()
    name = config.env_id.replace("/", "_").replace(":", "_")  # an import path's colon too
    if args.out is None and distributed.is_distributed():
        raise ValueError("out: a distributed run needs --out, a directory on a filesystem every process shares.")
    out = args.out or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    rundir.check_new_run_dir(out)
    # the environment built, the memory estimate, the chunks settled: before the directory exists
    agent, options = seed_ranges.plan(config, options)
    if options.chunk_size is not None and distributed.is_primary():
        chunks = seed_ranges.ranges(options)
        print(f"purejaxvpg: {options.num_seeds} seeds train in {len(chunks)} chunks of at most "
              f"{options.chunk_size} (--chunk-size), one after another, joined into {out} at the end",
              file=sys.stderr)
    distributed.barrier("checked")  # every process checked --out before process 0 creates it
    primary = distributed.is_primary()  # only process 0 writes the run directory
    lock = runlock.RunLock(out) if primary else runlock.NoLock()
    # the names of RUN_WRITES that --out held before this run, read under the lock: the
    # user's own tensorboard/ or wandb-run-id (not a run: accepted) stay as they are
    kept: set[str] | None = None

    def start(done: int) -> None:
        if primary:
            rundir.write_config(out, config, {**dataclasses.asdict(options), "log": list(log),
                                              "wandb_group": args.wandb_group})

    def discard() -> None:
        """Nothing to resume: remove what this run created (an empty checkpoints/ too), so
        the same command runs again; what --out held before is left as it was."""
        if primary and seed_ranges.progress(out, config, options) is None and not has_results(out):
            for path in (out / name for name in RUN_WRITES if kept is not None and name not in kept):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            lock.remove_created()

    try:
        if primary:
            rundir.check_new_run_dir(out)  # again under the lock: a run may have just ended there
            kept = {name for name in RUN_WRITES if (out / name).exists() or (out / name).is_symlink()}
        with watchdog.tidy_on_stop(discard):  # a forced stop, too, leaves nothing of a run with no checkpoint
            return run_session(out, config, options, resume=False, on_start=start, discard=discard,
                               log=log, wandb_group=args.wandb_group, agent=agent)
    except BaseException:
        discard()
        raise
    finally:
        lock.release()


def resume(args) -> int:
    """`--resume RUN_DIR`: the recorded config and options, only RESUME_MAY_CHANGE may
    differ; the resuming environment is appended to config.json's "resumes"."""

    from purejaxvpg.host import distributed, loggers, rundir, runlock, seed_ranges, session
    from purejaxvpg.host.checkpoint import steps

    given = ["--" + f.name.replace("_", "-") for f in dataclasses.fields(Config) if hasattr(args, f.name)]
    given += [flag for flag, value in (("--num-seeds", args.num_seeds), ("--seed", args.seed),
                                       ("--seed-start", args.seed_start), ("--chunk-size", args.chunk_size),
                                       ("--out", args.out), ("--config", args.config),
                                       ("--log-every", args.log_every)) if value is not None]
    given += ["--preset"] if args.preset else []
    if given:
        raise ValueError(
            f"resume: {', '.join(given)} cannot be combined with --resume: a resumed run keeps the "
            f"config and options recorded in {args.resume}/config.json (only {', '.join(RESUME_MAY_CHANGE)} "
            "may change). To train something else, leave out --resume and give a new --out."
        )
    out, primary = args.resume, distributed.is_primary()  # only process 0 writes the run directory
    lock = runlock.lock_existing(out, "resume") if primary else runlock.NoLock()  # first: a run still compiling
    try:
        config, run = rundir.read_config(out)
        known = {f.name for f in dataclasses.fields(session.RunOptions)}
        changed = {} if args.checkpoint_every is None else {"checkpoint_every": args.checkpoint_every}
        log = loggers.parse(",".join(run.get("log", [])) if args.log is None else args.log)
        changed.update({"log": list(log)} if args.log is not None else {})
        changed.update({"devices": flags.checked_devices(args.devices)} if args.devices is not None else {})
        options = session.RunOptions(**{**{k: v for k, v in run.items() if k in known},
                                        **changed, "progress": run.get("progress", True) if args.progress is None
                                        else args.progress}).validate()
        saved, total = steps(out), config.num_updates
        # before anything compiles: config.json must be the run its checkpoints hold
        seed_ranges.check_resume(out, config, options)
        held = seed_ranges.progress(out, config, options)
        if saved and saved[-1] >= total and has_results(out) and "results" in rundir.read_info(out):
            print(f"purejaxvpg: {out} is finished (update {total} of {total}): nothing to resume; "
                  "its results are in config.json, metrics.csv and metrics.npz.", file=sys.stderr)
            return 0
        if primary and saved:
            print(f"purejaxvpg: resuming {out} from its newest checkpoint (update {saved[-1]} of {total})",
                  file=sys.stderr)
        elif primary and held:
            print(f"purejaxvpg: resuming {out} from {held}", file=sys.stderr)
        elif primary:
            print(f"purejaxvpg: {out} has no checkpoint: training it from update 0", file=sys.stderr)
        return run_session(out, config, options, resume=True,
                        on_start=lambda done: rundir.record_resume(out, done, changed) if primary else None,
                        discard=None,
                        log=log, wandb_group=args.wandb_group or run.get("wandb_group"))
    finally:
        lock.release()


def join_distributed(args) -> None:
    """`--distributed`: join the jax.distributed run (explicit flags or cluster detection)
    before anything uses a device; its flags without it are refused."""
    from purejaxvpg.host import distributed

    cluster = {"--coordinator-address": args.coordinator_address, "--num-processes": args.num_processes,
               "--process-id": args.process_id, "--heartbeat-timeout": args.heartbeat_timeout}
    if not args.distributed:
        given = [flag for flag, value in cluster.items() if value is not None]
        if given:
            raise ValueError(f"distributed: {', '.join(given)} need --distributed.")
        return
    heartbeat = distributed.DEFAULT_HEARTBEAT_SECONDS if args.heartbeat_timeout is None else args.heartbeat_timeout
    distributed.initialize(args.coordinator_address, args.num_processes, args.process_id,
                           heartbeat_timeout_seconds=heartbeat)


def has_results(out: Path) -> bool:
    return (out / "metrics.npz").exists()


def run_session(out: Path, config: Config, options, resume: bool, on_start, discard, log=(),
                wandb_group=None, agent=None) -> int:
    """Run the session; write metrics.npz/.csv and config.json's results before the final
    checkpoint, then print, then plot: what can fail last loses nothing. metrics.csv is
    appended block by block meanwhile, and the `--log` loggers get every block (loggers.py).
    What libraries report from background threads goes to RUN_DIR/library.log (library_log.py)."""
    import jax

    from purejaxvpg.host import distributed

    name = LOG_NAME if distributed.is_primary() else f"library-process{jax.process_index()}.log"
    with LibraryLog(out / name):
        return _run_session(out, config, options, resume, on_start, discard, log, wandb_group, agent)


def _run_session(out: Path, config: Config, options, resume: bool, on_start, discard, log, wandb_group,
                 agent) -> int:
    """run_session's body, with the library log installed."""
    from purejaxvpg.host import distributed, loggers, rundir, seed_ranges

    primary = distributed.is_primary()  # the others train their seeds, print and write nothing
    logs = loggers.make(out, log, wandb_group) if primary else loggers.Loggers([])
    options = dataclasses.replace(options, progress=options.progress and primary)

    def start(done: int) -> None:
        on_start(done)
        logs.start(config, {**dataclasses.asdict(options), "run_dir": str(out), "log": list(log)}, done)

    def write_results(result) -> None:
        if not primary:
            return
        rundir.write_metrics(out, result, options.seed_start)
        results = summary.results(result)
        if result.updates_trained == 0:  # nothing trained now: no timings to report
            results.update(compile_seconds=None, run_seconds=None, env_steps_per_second=None)
        rundir.write_results(out, results)

    try:
        try:
            result = seed_ranges.run(config, options, out, resume=resume, on_start=start,
                                     on_result=write_results, on_block=logs.on_block, agent=agent)
        except BaseException:
            logs.finish(None)  # stopped early: close the loggers, then report as below
            raise
    except KeyboardInterrupt as stop:
        saved = seed_ranges.progress(out, config, options)
        if saved:
            print(f"purejaxvpg: interrupted at {saved}; resume with --resume {out}", file=sys.stderr)
        elif resume:
            print(f"purejaxvpg: interrupted before the first checkpoint: nothing to resume "
                  f"(--resume {out} trains it from update 0)", file=sys.stderr)
        else:
            discard()
            print("purejaxvpg: interrupted before the first checkpoint: nothing to resume "
                  "(nothing was kept; run the same command to start again)", file=sys.stderr)
        return getattr(stop, "exit_code", 130)
    except OSError as error:
        if not has_results(out):
            raise
        print(f"purejaxvpg: error: {error}\n(the run finished and its metrics were written first: "
              f"{out}/metrics.npz, metrics.csv)", file=sys.stderr)
        return 1
    if not primary:
        return 0
    try:
        print(summary.summary(result))
        rundir.write_plot(out, result)
    finally:
        logs.finish(result)  # W&B's artifact of the run directory: after the plot
    print(f"wrote {out}/: config.json, metrics.csv, metrics.npz, learning_curve.png, checkpoints/")
    return 0
