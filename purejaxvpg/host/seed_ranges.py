"""A CLI run of more seeds than fit in device memory at once: the seeds in sequential
chunks, each a session (session.run) with a sub-run directory of its own, joined into the
run directory at the end (join.py, what `purejaxvpg merge` writes too).

    RUN_DIR/config.json              the whole run; run.chunk_size: seeds per chunk
    RUN_DIR/chunks/seeds-K-L/        the run of global seeds K..L: config.json, metrics.csv
                                     (growing block by block), checkpoints/, metrics.npz
    RUN_DIR/metrics.npz, .csv, checkpoints/, learning_curve.png: written by the join

Seed i's key does not depend on the chunk it trains in (prng.seed_keys), so a chunked run
computes exactly the seeds of a run trained at once. Each chunk checkpoints like any run;
Ctrl-C / SIGTERM checkpoint the running chunk; `--resume RUN_DIR` skips the finished
chunks, resumes the interrupted one from its checkpoint and trains the rest. Chunks trained
by other code than the resuming one are refused before anything compiles: a run's seeds
are joined only when one code trained them all. Once the joined final checkpoint is on
disk, the chunks' checkpoints are removed (the joined one holds every seed's state); their
config.json and metrics stay, and config.json's "chunks" records each one.

TensorBoard and W&B (`--log`) get the joined curves when the last chunk is done: an
aggregate over the seeds of one chunk is another quantity than the run's.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

from purejaxvpg.algo.program import Agent
from purejaxvpg.config import Config
from purejaxvpg.host import distributed, driver, join, loggers, memory, placement, rundir, session
from purejaxvpg.host.checkpoint import steps
from purejaxvpg.host.driver import TrainResult
from purejaxvpg.host.provenance import code_version
from purejaxvpg.report import summary

CHUNKS = "chunks"  # RUN_DIR/chunks/: the sub-runs


def plan(config: Config, options: session.RunOptions) -> tuple[Agent, session.RunOptions]:
    """Everything a CLI run refuses, checked without compiling or writing (the config, the
    options, whether a chunk fits in device memory: estimate), and the run's options with
    `chunk_size` settled: None when every seed trains in one session, else the seeds per
    chunk (as given, or as many as fit). Returns the run's Agent too (built once)."""
    options.validate()
    agent = driver.prepare(config)
    count = len(placement.select(options.devices))
    fit = memory.seeds_that_fit(agent) * count
    if options.chunk_size is not None and options.chunk_size > fit:
        raise ValueError(f"chunk_size: at most {fit} seeds fit in the memory of {count} device(s) (estimate); "
                         f"got {options.chunk_size}. Give --chunk-size {fit} or fewer, or leave it out.")
    chunk = min(options.num_seeds, options.chunk_size or fit)
    options = dataclasses.replace(options, chunk_size=chunk if chunk < options.num_seeds else None)
    _refuse_distributed(options, f"at most {fit} seeds fit in the memory of the run's {count} devices (estimate)")
    if options.chunk_size is not None:
        need, (have, source) = memory.joined_bytes(driver.abstract_state(agent, 1), config,
                                                   options.num_seeds), memory.host_limit()
        if need > have:
            raise ValueError(
                f"num_seeds: {options.num_seeds} seeds train in chunks of {options.chunk_size}, but joining "
                f"their final states and metrics needs an estimated {memory.size(need)} of host memory and "
                f"{memory.size(have)} can be allocated ({source}): train fewer seeds per run (--num-seeds, "
                "--seed-start K for each range) and read the runs together (`purejaxvpg export` takes several).")
    session.check(config, part_options(options, ranges(options)[0]))
    return agent, options


def _refuse_distributed(options: session.RunOptions, why: str) -> None:
    """ValueError when a chunked run would run distributed: its sub-runs and the join are
    written by one process (left out so far; merge joins the ranges of distributed runs)."""
    if options.chunk_size is not None and distributed.is_distributed():
        raise ValueError(
            f"num_seeds: {why}, and a distributed run trains its seeds in one session, not in chunks (got "
            f"{options.num_seeds} seeds, chunks of {options.chunk_size}): give --num-seeds {options.chunk_size} "
            "or fewer per run (--seed-start K for each range) and join the runs with `purejaxvpg merge`.")


def ranges(options: session.RunOptions) -> list[range]:
    """The run's chunks as ranges of global seed indices (one range when not chunked)."""
    seeds = range(options.seed_start, options.seed_start + options.num_seeds)
    size = options.chunk_size or options.num_seeds
    return [seeds[i:i + size] for i in range(0, len(seeds), size)]


def part_dir(out: Path, seeds: range) -> Path:
    return Path(out) / CHUNKS / f"seeds-{seeds.start:07d}-{seeds.stop - 1:07d}"


def part_options(options: session.RunOptions, seeds: range) -> session.RunOptions:
    """The session options of the chunk `seeds`: a run of that seed range."""
    return dataclasses.replace(options, num_seeds=len(seeds), seed_start=seeds.start, chunk_size=None)


def _finished(path: Path, config: Config) -> bool:
    """The sub-run has its results and its final checkpoint (written in that order)."""
    U = config.num_updates
    done = steps(path)
    return bool(done) and done[-1] == U and "results" in rundir.read_info(path)


def progress(out: Path, config: Config, options: session.RunOptions) -> str | None:
    """Where a --resume continues from, in words: "update 40", or in a chunked run (its
    chunks train in order) "chunk 3 of 5 (seeds 8..11), update 40 of 100" or "the end of
    chunk 2 of 5 (seeds 4..7)"; None: nothing to continue from."""
    done = steps(out)
    if done:
        return f"update {done[-1]}"
    if options.chunk_size is None:
        return None
    chunks = ranges(options)
    for i, seeds in reversed(list(enumerate(chunks))):
        where = f"chunk {i + 1} of {len(chunks)} (seeds {join.seeds_text(seeds)})"
        path = part_dir(out, seeds)
        if _finished(path, config):
            return f"the end of {where}"
        if steps(path):
            return f"{where}, update {steps(path)[-1]} of {config.num_updates}"
    return None


def check_resume(out: Path, config: Config, options: session.RunOptions) -> None:
    """ValueError unless RUN_DIR/config.json describes the run its checkpoints hold (the
    joined one and every chunk's: session.check_resume) and every chunk begun was trained by
    this code. Compiles nothing."""
    _refuse_distributed(options, f"the run trains in chunks of {options.chunk_size} seeds")
    if steps(out):
        session.check_resume(out, config, dataclasses.replace(options, chunk_size=None))
    if options.chunk_size is None:
        return
    begun = []
    for seeds in ranges(options):
        path = part_dir(out, seeds)
        if steps(path):
            session.check_resume(path, config, part_options(options, seeds))
            begun.append(join.Part(path, config, rundir.read_info(path), {}))
    join.check_codes(begun, code_version(), "this purejaxvpg, which resumes it", "resume")


def run(config: Config, options: session.RunOptions, out: Path, resume: bool, on_start, on_result, on_block,
        agent: Agent | None = None) -> TrainResult:
    """session.run for a CLI run: one session when options.chunk_size is None, else the
    chunks one after another (finished ones skipped), then the join. The hooks are called
    as session.run calls them, for the whole run: on_start(0) once the first chunk's
    program compiled, on_block(num_updates, ...) once with the joined metrics, on_result
    with the joined result before the joined final checkpoint is written."""
    if options.chunk_size is None:
        return session.run(config, options, out, resume=resume, on_start=on_start, on_result=on_result,
                           on_block=on_block, agent=agent)
    agent = agent or session.check(config, part_options(options, ranges(options)[0]))
    chunks, started = ranges(options), []
    # a last, smaller chunk runs padded to the others' size: their compiled program
    pad_to = placement.padded(options.chunk_size, len(placement.select(options.devices)))
    totals = {"compile": 0.0, "run": 0.0, "seeds": 0, "seed_updates": 0, "from_cache": False}

    def start_once() -> None:
        if not started:
            started.append(True)
            on_start(0)  # the run's own record: the chunks hold the progress

    for i, seeds in enumerate(chunks):
        path = part_dir(out, seeds)
        if _finished(path, config):
            continue
        if options.progress:
            print(f"purejaxvpg: chunk {i + 1} of {len(chunks)}: seeds {join.seeds_text(seeds)}", file=sys.stderr)
        part = _run_part(config, part_options(options, seeds), path, agent, start_once, pad_to)
        totals["compile"] += part.compile_seconds
        totals["from_cache"] |= part.compile_from_cache
        totals["run"] += part.run_seconds
        totals["seeds"] += part.seeds_trained
        totals["seed_updates"] += part.seeds_trained * part.updates_trained
    start_once()  # every chunk was finished before (a resume after a stop in the join)

    label = "resume" if resume else "train"
    parts = join.check_parts([join.read_part(part_dir(out, seeds), label) for seeds in chunks], label)
    result = join.join(parts, [join.final_state(p) for p in parts],
                       compile_seconds=totals["compile"], compile_from_cache=totals["from_cache"],
                       run_seconds=totals["run"], chunk_size=options.chunk_size,
                       seeds_trained=totals["seeds"], seed_updates_trained=totals["seed_updates"],
                       updates_trained=config.num_updates if totals["seed_updates"] else 0,
                       devices=len(placement.select(options.devices)), agent=agent)
    rundir.update_config(out, lambda info: info.__setitem__(CHUNKS, join.record(parts)))
    if on_block is not None:
        on_block(config.num_updates, result.metrics, result.eval_metrics)
    on_result(result)
    join.save_final(out, result, options.seed)
    for part in parts:  # the joined checkpoint holds every seed's state
        shutil.rmtree(part.path / "checkpoints", ignore_errors=True)
    return result


def _run_part(config: Config, options: session.RunOptions, path: Path, agent: Agent, start_once,
              pad_to: int) -> TrainResult:
    """One chunk as a session in its sub-run directory: config.json (rewritten while it has
    no checkpoint, else its resumes recorded), metrics.csv block by block, the results."""
    logs = loggers.make(path)  # metrics.csv only: the run's own loggers get the joined run
    seeds = range(options.seed_start, options.seed_start + options.num_seeds)

    def start(done: int) -> None:
        start_once()
        if done:
            rundir.record_resume(path, done)
        else:
            rundir.write_config(path, config, {**dataclasses.asdict(options), "log": [], "wandb_group": None})
        logs.start(config, {"seed_start": seeds.start}, done)

    def write_results(result: TrainResult) -> None:
        rundir.write_metrics(path, result, seeds.start)
        rundir.write_results(path, summary.results(result))

    return session.run(config, options, path, resume=bool(steps(path)), on_start=start,
                       on_result=write_results, on_block=logs.on_block, agent=agent, pad_to=pad_to)
