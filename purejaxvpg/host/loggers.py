"""Loggers a session calls between blocks (host side only: never inside the jitted program).

    purejaxvpg train ... --log tensorboard,wandb

The run directory stays the source of truth: `CsvLogger` (always on in the CLI) appends
each finished block's rows to RUN_DIR/metrics.csv, so a crashed or killed run still has
its curve. `TensorBoardLogger` (extra [tensorboard], tensorboardX; no TensorFlow) writes
RUN_DIR/tensorboard/, `WandbLogger` (extra [wandb]) a Weights & Biases run. Both log, for
every update of the block, the across-seed IQM and mean of every metric (and of every
evaluation) against `env_steps` (per seed); W&B also each seed's own return curves (the
first `MAX_SEED_CURVES` seeds). Seeds that diverged (a non-finite metric) are left out of the
aggregates from then on, as everywhere else; `diverged_seeds` counts them.

A logger that raises is switched off with one warning on stderr; training goes on
(`Loggers`). Both libraries write in background threads or processes, so a block costs the
loop the time to hand them a few numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import queue
import re
import secrets
import sys
import threading
from pathlib import Path

import numpy as np

from purejaxvpg.algo.metrics import METRIC_NAMES
from purejaxvpg.config import Config
from purejaxvpg.host import rundir, runlock
from purejaxvpg.report import stats

# --log name -> (module it imports, pyproject extra that installs it)
OPTIONAL = {"tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb", "wandb")}
# per-seed W&B curves: of the returns, for the first seeds (a run may have thousands); more
# keys cost W&B's process time on every log call (benchmarks/logging_overhead.py)
SEED_CURVES = ("episode_return", "eval_return_greedy", "eval_return_stochastic")
MAX_SEED_CURVES = 16


@dataclasses.dataclass(frozen=True)
class Block:
    """One finished block: metrics name -> [num_seeds, updates], evaluations name ->
    [num_seeds, evals] at eval_env_steps [evals], and `finite` [num_seeds, updates]
    (`eval_finite` [num_seeds, evals]): the seeds that had not diverged by then, what the
    aggregates keep."""

    updates_done: int
    metrics: dict
    evals: dict
    eval_env_steps: np.ndarray
    finite: np.ndarray
    eval_finite: np.ndarray

    @property
    def first_update(self) -> int:
        return self.updates_done - self.metrics["env_steps"].shape[1]

    @property
    def env_steps(self) -> np.ndarray:  # per seed, after each update of the block [updates]
        return self.metrics["env_steps"][0]

    @functools.cached_property
    def curves(self) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Every metric but env_steps (the x-axis) and every evaluation: name -> (env steps,
        {"iqm": ..., "mean": ...}), each [updates] or [evals]. Computed once per block."""
        out = {n: (self.env_steps, aggregates(v, self.finite)) for n, v in self.metrics.items()
               if n != "env_steps"}
        out.update({n: (self.eval_env_steps, aggregates(v, self.eval_finite)) for n, v in self.evals.items()})
        return out


class Logger:
    """start once the program compiled (updates_done > 0 when resumed), log_block after
    every block, finish at the end (result None when the run stopped early)."""

    name = "logger"

    def start(self, config: Config, run: dict, updates_done: int) -> None: ...

    def log_block(self, block: Block) -> None: ...

    def finish(self, result) -> None: ...


def aggregates(values: np.ndarray, keep: np.ndarray) -> dict[str, np.ndarray]:
    """IQM and mean across seeds of each update, [seeds, updates] -> [updates] each, over
    the seeds `keep` marks (NaN where none is left)."""
    if keep.all():  # the usual case, in one vectorised call
        return {"iqm": stats.iqm(values, axis=0), "mean": values.mean(axis=0)}
    columns = [v[k] for v, k in zip(values.T, keep.T)]
    return {name: np.array([f(c) if c.size else np.nan for c in columns])
            for name, f in (("iqm", stats.iqm), ("mean", np.mean))}


def final_scalars(result) -> dict[str, float]:
    """'final/<eval metric>/iqm' and '/mean' across the seeds that did not diverge, of the
    final evaluation (result.final_eval); {} without one (or no finite seed)."""
    keep = result.finite_seeds
    if not result.final_eval or not keep.any():
        return {}
    return {f"final/{name}/{stat}": float(value) for name, values in result.final_eval.items()
            for stat, value in (("iqm", stats.iqm(values[keep])), ("mean", values[keep].mean()))}


class CsvLogger(Logger):
    """RUN_DIR/metrics.csv, one block of rows at a time (host/rundir.py's format). On a
    resume the rows beyond the restored update are dropped first: those blocks train again."""

    name = "csv"

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / "metrics.csv"
        self.first_seed = 0  # the run's seed_start: rows name global seeds

    def start(self, config: Config, run: dict, updates_done: int) -> None:
        header = rundir.csv_header(dict.fromkeys(METRIC_NAMES))
        self.first_seed = run.get("seed_start", 0)
        kept = []
        if updates_done and self.path.is_file():
            lines = self.path.read_text().split("\n")[:-1]  # the last piece: partial or empty
            if lines and lines[0] + "\n" == header:
                width = header.count(",") + 1
                kept = [line + "\n" for line in lines[1:]
                        if line.count(",") + 1 == width and _update_of(line) < updates_done]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(header + "".join(kept))
        tmp.replace(self.path)

    def log_block(self, block: Block) -> None:
        with open(self.path, "a") as handle:
            handle.write(rundir.csv_rows(block.metrics, block.first_update, self.first_seed))


def _update_of(line: str) -> int:
    """The update column of a metrics.csv row; a damaged row counts as after every update."""
    try:
        return int(line.split(",", 2)[1])
    except ValueError:
        return sys.maxsize


class TensorBoardLogger(Logger):
    """RUN_DIR/tensorboard/: `<metric>/iqm` and `<metric>/mean` per update, x = env steps.
    One event per update holds all its scalars (tensorboardX's FileWriter, which writes in a
    thread): ~30x cheaper than one add_scalar call per value."""

    name = "tensorboard"

    def __init__(self, run_dir: str | Path):
        self.logdir = Path(run_dir) / "tensorboard"

    def start(self, config: Config, run: dict, updates_done: int) -> None:
        from tensorboardX import FileWriter, summary
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        self.writer = FileWriter(str(self.logdir), max_queue=1000, flush_secs=10)
        # on a resume TensorBoard drops what an earlier process logged after the checkpoint
        self.writer.add_event(Event(step=updates_done * config.batch_size + 1,
                                    session_log=SessionLog(status=SessionLog.START)))
        if not updates_done:
            self.writer.add_summary(summary.text("config", rundir.json_text(dataclasses.asdict(config))), 0)

    def log_block(self, block: Block) -> None:
        from tensorboardX.proto.summary_pb2 import Summary

        at = {step: [] for step in block.env_steps.tolist()}  # evaluations join their update
        for name, (steps, curves) in block.curves.items():
            for stat, curve in curves.items():
                for step, value in zip(steps.tolist(), curve.tolist()):
                    at[step].append(Summary.Value(tag=f"{name}/{stat}", simple_value=value))
        for step, count in zip(block.env_steps.tolist(), (~block.finite).sum(axis=0).tolist()):
            at[step].append(Summary.Value(tag="diverged_seeds", simple_value=count))
        for step, values in at.items():
            self.writer.add_summary(Summary(value=values), step)

    def finish(self, result) -> None:
        from tensorboardX.proto.summary_pb2 import Summary

        final = final_scalars(result) if result is not None else {}
        if final:  # at the run's last env step
            step = result.config.num_updates * result.config.batch_size
            self.writer.add_summary(Summary(value=[Summary.Value(tag=k, simple_value=v) for k, v in final.items()]),
                                    step)
        self.writer.close()


class WandbLogger(Logger):
    """A Weights & Biases run named after RUN_DIR, in group `group` (default: the run
    directory's name; give a sweep's runs one group). Config, run options and package
    versions are its config; `env_steps` is every chart's x-axis; at the end RUN_DIR is
    logged as an artifact. A resumed run continues the same W&B run (RUN_DIR/wandb-run-id)."""

    name = "wandb"

    def __init__(self, run_dir: str | Path, group: str | None = None):
        self.run_dir, self.group = Path(run_dir), group

    def start(self, config: Config, run: dict, updates_done: int) -> None:
        import wandb

        self.first_seed = run.get("seed_start", 0)  # seed curves name global seeds
        id_file = self.run_dir / "wandb-run-id"
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(6)
        id_file.write_text(run_id + "\n")
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "purejaxvpg"), id=run_id, resume="allow",
            name=self.run_dir.name, group=self.group or self.run_dir.name,
            config={"config": dataclasses.asdict(config), "run": run, **rundir.environment()},
            settings=wandb.Settings(console="off"),  # leave stdout / stderr (progress bar) alone
        )
        self.run.define_metric("env_steps")
        self.run.define_metric("*", step_metric="env_steps")
        self.rows, self.failure = queue.Queue(), None
        self.sender = threading.Thread(target=self._send, name="purejaxvpg-wandb", daemon=True)
        self.sender.start()

    def _send(self) -> None:
        """run.log of every queued row, in order, off the training loop: each call waits on
        W&B's own process (~1 ms). The first error stops it; log_block then raises it."""
        while (row := self.rows.get()) is not None:
            if self.failure is None:
                try:
                    self.run.log(row)
                except Exception as error:
                    self.failure = error

    def log_block(self, block: Block) -> None:
        if self.failure is not None:
            raise self.failure
        diverged = (~block.finite).sum(axis=0)
        rows = [{"env_steps": int(step), "updates_done": block.first_update + i + 1,
                 "diverged_seeds": int(diverged[i])} for i, step in enumerate(block.env_steps)]
        at = {int(step): row for step, row in zip(block.env_steps, rows)}  # evaluations join their update
        for name, (steps, curves) in block.curves.items():
            columns = {f"{name}/{stat}": curve for stat, curve in curves.items()}
            if name in SEED_CURVES:
                values = {**block.metrics, **block.evals}[name]
                columns.update({f"{name}/seed_{self.first_seed + i}": v  # global seeds, as metrics.csv
                                for i, v in enumerate(values[:MAX_SEED_CURVES])})
            for key, curve in columns.items():
                for step, value in zip(steps.tolist(), curve.tolist()):
                    at[step][key] = value
        for row in rows:
            self.rows.put(row)

    def finish(self, result) -> None:
        import wandb

        self.rows.put(None)
        self.sender.join()  # every row logged
        try:
            if result is not None and self.failure is None:
                self.run.summary.update(final_scalars(result))  # the run's reported numbers
                name = re.sub(r"[^A-Za-z0-9_.-]", "-", self.run_dir.name)
                artifact = wandb.Artifact(name=f"run-{name}", type="run-dir")
                for path in sorted(set(self.run_dir.iterdir()) - {self.run_dir / runlock.LOCK_NAME}):
                    artifact.add_dir(str(path), name=path.name) if path.is_dir() else artifact.add_file(str(path))
                self.run.log_artifact(artifact)
        finally:
            self.run.finish(exit_code=0 if result is not None and self.failure is None else 1)
        if self.failure is not None:
            raise self.failure


class Loggers:
    """The loggers of one session behind one interface (the hooks session.run and the CLI
    call). A logger that raises is warned about once on stderr and dropped; training and
    the other loggers go on."""

    def __init__(self, loggers: list[Logger]):
        self.active, self.config = list(loggers), None
        self.finite = None  # [num_seeds]: not diverged so far

    def start(self, config: Config, run: dict, updates_done: int) -> None:
        self.config = config
        self._call("start", config, run, updates_done)

    def on_block(self, updates_done: int, metrics: dict, evals: dict) -> None:
        """session.run's on_block hook."""
        c = self.config
        ok = np.logical_and.reduce([np.isfinite(v) for v in metrics.values()])  # [seeds, updates]
        if self.finite is not None:
            ok[:, 0] &= self.finite
        finite = np.logical_and.accumulate(ok, axis=1)
        self.finite = finite[:, -1]
        num = next(iter(evals.values())).shape[1] if evals else 0
        last = updates_done // c.eval_every if c.eval_every else 0
        at = np.arange(last - num + 1, last + 1) * c.eval_every  # updates done at each evaluation
        columns = at - (updates_done - finite.shape[1]) - 1
        self._call("log_block", Block(updates_done, metrics, evals, at * c.batch_size, finite,
                                      finite[:, columns]))

    def finish(self, result) -> None:
        """At the end (result None: the run stopped early); every logger's last call. A
        session stopped before it started (interrupted while compiling) started no logger:
        none has anything to finish."""
        if self.config is not None:
            self._call("finish", result)
        self.active = []

    def _call(self, method: str, *args) -> None:
        for logger in list(self.active):
            try:
                getattr(logger, method)(*args)
            except Exception as error:
                self.active.remove(logger)
                print(f"purejaxvpg: warning: the {logger.name} logger failed in {method} "
                      f"({type(error).__name__}: {error}); it is off for the rest of this run, "
                      "training goes on", file=sys.stderr)
                if method != "finish":
                    try:
                        logger.finish(None)  # close what it opened; it failed already
                    except Exception:
                        pass


def parse(text: str | None) -> tuple[str, ...]:
    """--log's comma-separated names, checked (known, package installed) before compiling."""
    names = tuple(dict.fromkeys(n.strip() for n in (text or "").split(",") if n.strip()))
    unknown = [n for n in names if n not in OPTIONAL]
    if unknown:
        raise ValueError(f"log: unknown logger {', '.join(map(repr, unknown))} in --log; allowed: "
                         f"{', '.join(OPTIONAL)} (comma-separated; metrics.csv is always written)")
    for name in names:
        module, extra = OPTIONAL[name]
        if importlib.util.find_spec(module) is None:
            raise ValueError(f"log: --log {name} needs the {module} package: "
                             f"pip install 'purejaxvpg[{extra}]'")
    return names


def make(run_dir: str | Path, names: tuple[str, ...] = (), wandb_group: str | None = None) -> Loggers:
    """The CSV logger, then the ones `names` (from `parse`) select."""
    chosen: list[Logger] = [CsvLogger(run_dir)]
    if "tensorboard" in names:
        chosen.append(TensorBoardLogger(run_dir))
    if "wandb" in names:
        chosen.append(WandbLogger(run_dir, wandb_group))
    return Loggers(chosen)
