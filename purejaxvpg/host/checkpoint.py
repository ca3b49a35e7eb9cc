"""Checkpoints of a run with orbax: the whole batched TrainState plus the metrics so far.

("history" is the metrics so far: orbax reserves the item name "metrics".)
The TrainState holds everything a run needs to continue exactly (parameters, optimizer
states, environment states with their observation-normalisation statistics, PRNG keys),
so a resumed run ends with the same metrics as one that never stopped.
orbax writes each checkpoint to a temporary directory and renames it when complete, so a
process killed while writing leaves the previous checkpoint the latest readable one. A
checkpoint damaged afterwards (truncated files, a full disk) is named on stderr and the
previous intact one restored instead.

Checkpoints written by earlier releases restore too, as the current code would have written
them (`_migrate`). Layout v0 (purejaxvpg 0.1.0, up to commit 7c4a72d) is recognised from the
saved TrainState's field names (orbax metadata, read before restoring): it called
`updates_done` `update` and kept the evaluation metrics padded to every update.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import sys
from pathlib import Path

import jax
import numpy as np

from purejaxvpg.algo import prng
from purejaxvpg.algo.metrics import EVAL_METRIC_NAMES
from purejaxvpg.host.library_log import is_orbax_error


def _orbax():
    """orbax.checkpoint, imported on first use: a run without a run directory (pjv.train)
    never loads it, nor tensorstore (~0.1 s; its own copy of abseil next to jaxlib's is a
    known source of crashes at interpreter exit, conda-forge/jaxlib-feedstock#343)."""
    import orbax.checkpoint

    return orbax.checkpoint


ITEMS = ("train_state", "history")  # the items of one checkpoint ("metrics" is orbax's own)
# and, since 0.2.0, "run": what defines the run (its Config, base seed and seed range, with
# a digest of both; `identity`), so --resume can refuse a config.json edited by hand
IDENTITY = "run"
# UpdateMetrics added since checkpoints were first written, with the value every older run had
ADDED_METRICS = {"greedy_fraction": 0.0}  # no greedy schedule before it existed
V0_FIELDS = {"updates_done": "update"}  # current TrainState field -> its name in layout v0
# TrainState fields whose value a checkpoint from before them cannot hold yet: restored as NaN
NOT_YET_COMPUTED = ("final_eval",)


def identity(config, seed: int, seed_start: int, num_seeds: int) -> dict:
    """What defines a run, as a checkpoint carries it: the Config (as config.json writes
    it), the base seed and the seed range, and a sha256 of them."""
    run = {"config": json.loads(json.dumps(dataclasses.asdict(config))), "seed": seed, "seed_start": seed_start,
           "num_seeds": num_seeds}
    run["sha256"] = hashlib.sha256(json.dumps(run, sort_keys=True).encode()).hexdigest()
    return run


def check_identity(run_dir, config, seed: int, seed_start: int, num_seeds: int, name: str,
                   instead: str = "then try again") -> None:
    """ValueError naming `name` and each field that differs unless config.json's run (the
    Config, base seed, seed range) is the one the newest checkpoint was written for: a
    config.json edited by hand would relabel seeds, mix two runs, or rebuild another
    network or environment. Checkpoints written before 0.2.0 carry no identity and are
    believed. Reads one small item; compiles nothing; never calls a checkpoint damaged."""
    checkpoints = Checkpoints(run_dir)
    try:
        saved = checkpoints.identity()
    finally:
        checkpoints.close()
    if saved is None:
        return
    changed = differences(saved, identity(config, seed, seed_start, num_seeds))
    if changed:
        raise ValueError(
            f"{name}: {run_dir}/config.json does not describe the run its checkpoints hold "
            f"({'; '.join(changed[:4])}{'; ...' if len(changed) > 4 else ''}: checkpoint -> config.json). "
            f"The checkpoints are intact; put config.json back as the run wrote it, {instead}."
        )


def differences(saved: dict, now: dict) -> list[str]:
    """The fields where two run identities differ, as "name: saved -> now" ("config.<field>"
    for a Config field), in the order of the identity."""
    out = []
    for key in ("seed", "seed_start", "num_seeds"):
        if saved.get(key) != now.get(key):
            out.append(f"{key}: {saved.get(key)!r} -> {now.get(key)!r}")
    old, new = saved.get("config", {}), now.get("config", {})
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out.append(f"config.{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return out


class LayoutError(ValueError):
    """A checkpoint of an earlier layout that this call lacks the information to migrate."""


def steps(run_dir: str | Path) -> list[int]:
    """Updates done at each complete checkpoint in RUN_DIR/checkpoints, oldest first
    (orbax's unfinished temporary directories are not steps). Reads only directory names."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())


class _OrbaxErrors(logging.Filter):
    """Drops orbax's own ERROR logs (with tracebacks, one per background thread, for a
    damaged file or a full disk); `Checkpoints` reports each failure once, by name."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not is_orbax_error(record)


class _UnretrievedWriteErrors(logging.Filter):
    """After a failed asynchronous save, orbax leaves futures whose error nobody reads;
    asyncio logs each ("exception was never retrieved") when they are collected, often
    after the session ended. The failure was reported once already (Checkpoints.wait)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "exception was never retrieved" not in record.getMessage()


if not any(isinstance(f, _UnretrievedWriteErrors) for f in logging.getLogger("asyncio").filters):
    logging.getLogger("asyncio").addFilter(_UnretrievedWriteErrors())


@contextlib.contextmanager
def _quiet_orbax():
    """While it lasts, orbax's ERROR logs are dropped (see _OrbaxErrors)."""
    quiet = _OrbaxErrors()
    logger = logging.getLogger("absl")
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


class Checkpoints:
    """`RUN_DIR/checkpoints/<updates done>/`, the newest `max_to_keep` kept."""

    def __init__(self, run_dir: str | Path, max_to_keep: int = 2):
        self.dir = Path(run_dir).absolute() / "checkpoints"
        self._quiet = _quiet_orbax()  # for the manager's lifetime: its threads log too
        self._quiet.__enter__()
        registry = _orbax().handlers.DefaultCheckpointHandlerRegistry()
        for item in ITEMS:  # registered up front, so a checkpoint's metadata reads before a restore
            registry.add(item, _orbax().args.StandardSave)
            registry.add(item, _orbax().args.StandardRestore)
        registry.add(IDENTITY, _orbax().args.JsonSave)
        registry.add(IDENTITY, _orbax().args.JsonRestore)
        self.manager = _orbax().CheckpointManager(
            self.dir, options=_orbax().CheckpointManagerOptions(max_to_keep=max_to_keep),
            handler_registry=registry,
        )

    def save(self, updates_done: int, state, metrics: dict[str, np.ndarray], run: dict | None = None) -> None:
        """state: batched TrainState [num_seeds, ...]; metrics: name -> [num_seeds, updates_done];
        run: the run's `identity` (saved beside them).

        Asynchronous: training goes on while the files are written (`wait`, `close`); a
        failure of the previous save is raised here (OSError)."""
        self.wait()
        with self._as_os_error():
            self.manager.save(
                updates_done,
                args=_orbax().args.Composite(
                    # numpy: every process holds all of it and process 0 writes it (several processes)
                    train_state=_orbax().args.StandardSave(jax.tree.map(np.asarray, prng.to_data(state))),
                    history=_orbax().args.StandardSave({k: np.asarray(v) for k, v in metrics.items()}),
                    **({} if run is None else {IDENTITY: _orbax().args.JsonSave(run)}),
                ),
                force=True,
            )  # returns once the arrays are on the host; the files are written in the background

    def wait(self) -> None:
        """Until the last save is on disk."""
        with self._as_os_error():
            self.manager.wait_until_finished()

    @contextlib.contextmanager
    def _as_os_error(self):
        """A failed write (full disk: orbax raises OSError, or ValueError with tensorstore's
        RESOURCE_EXHAUSTED) becomes one short OSError naming the checkpoint directory."""
        try:
            yield
        except Exception as error:
            reason = getattr(error, "strerror", None) or str(error).splitlines()[0][:200]
            raise OSError(f"could not write a checkpoint into {self.dir}: {reason}") from error

    def identity(self) -> dict | None:
        """The run identity saved with the newest checkpoint that has one (None: no
        checkpoint, or only ones written before 0.2.0). Reads only that small item."""
        for step in sorted(self.manager.all_steps(), reverse=True):
            if (self.dir / str(step) / IDENTITY).is_dir():
                try:
                    return dict(self.manager.restore(step, args=_orbax().args.Composite(
                        **{IDENTITY: _orbax().args.JsonRestore()}))[IDENTITY])
                except Exception:  # a damaged item: the restore names the damage, not this check
                    continue
        return None

    def latest(self) -> int | None:
        """Updates done at the newest complete checkpoint, or None."""
        return self.manager.latest_step()

    def restore(self, abstract_state, step: int | None = None, set_aside_damaged: bool = False,
                eval_every: int | None = None):
        """(updates_done, state, metrics) of checkpoint `step` (default: the newest intact one).

        `abstract_state` is the state's structure (jax.eval_shape of the batched init).
        eval_every: the run's config.eval_every, needed to restore the evaluations of a
        checkpoint written by an earlier release (see `_migrate`).
        Without `step`, a checkpoint that cannot be read is named on stderr and the one
        before it tried; with set_aside_damaged (a resumed run, which will write those
        steps again) it is renamed to `damaged-<step>`, which orbax ignores. ValueError
        when none is intact."""
        candidates = [step] if step is not None else sorted(self.manager.all_steps(), reverse=True)
        if not candidates:
            raise ValueError(f"checkpoints: no checkpoint in {self.dir}")
        damaged = []
        for candidate in candidates:
            try:
                restored = self._restore(abstract_state, candidate, eval_every)
            except LayoutError:
                raise  # intact, but this call cannot read it: never set aside as damaged
            except Exception as error:  # orbax/tensorstore raise many kinds on damaged files
                reason = f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
                damaged.append(candidate)
                print(f"purejaxvpg: warning: checkpoint {self.dir / str(candidate)} is damaged ({reason})"
                      + ("; trying the previous one" if candidate != candidates[-1] else ""), file=sys.stderr)
                continue
            if set_aside_damaged and damaged:
                for bad in damaged if jax.process_index() == 0 else ():  # several processes: one renames
                    aside, n = self.dir / f"damaged-{bad}", 1
                    while aside.exists():
                        aside, n = self.dir / f"damaged-{bad}-{n}", n + 1
                    (self.dir / str(bad)).rename(aside)
                self.manager.reload()
            if damaged:
                print(f"purejaxvpg: warning: using checkpoint {candidate} instead",
                      file=sys.stderr)
            return restored
        raise ValueError(
            f"checkpoints: no intact checkpoint in {self.dir} (damaged: {', '.join(map(str, damaged))}); "
            "delete the damaged ones to start the run again from update 0."
        )

    def _restore(self, abstract_state, step: int, eval_every: int | None):
        saved_fields = set(self.manager.metadata(step).item_metadata["train_state"].keys())
        v0 = "updates_done" not in saved_fields and "update" in saved_fields
        target = shapes = jax.tree.map(prng.data_shape, abstract_state)
        # fields added since the checkpoint was written: None (no leaves) in runs that do not
        # use them (TrainState.episode_so_far), or a value not yet computed (final_eval: NaN,
        # until the last update runs): restore the others, then fill these
        added = {f.name for f in dataclasses.fields(target)
                 if f.name not in saved_fields and (getattr(target, f.name) is None or f.name in NOT_YET_COMPUTED)}
        if v0 or added:  # the same tree as a dict, under the fields' old names in v0
            target = {V0_FIELDS.get(f.name, f.name) if v0 else f.name: getattr(target, f.name)
                      for f in dataclasses.fields(target) if f.name not in added}
        out = self.manager.restore(
            step,
            args=_orbax().args.Composite(
                train_state=_orbax().args.StandardRestore(target), history=_orbax().args.StandardRestore()
            ),
        )
        saved, metrics = out.train_state, {k: np.asarray(v) for k, v in out.history.items()}
        if v0:
            saved, metrics = _migrate(saved, metrics, type(abstract_state), step, eval_every)
        elif added:
            saved = type(abstract_state)(**saved)
        if added:
            saved = saved.replace(**{name: _not_computed(getattr(shapes, name)) for name in added})
        for name, value in ADDED_METRICS.items():
            if name not in metrics and "env_steps" in metrics:
                metrics[name] = np.full(metrics["env_steps"].shape, value, np.float32)
        return step, prng.from_data(saved, abstract_state), metrics

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.manager.close()
            self._quiet.__exit__(None, None, None)


def _not_computed(like):
    """A field restored from a checkpoint that predates it: None, or NaN leaves shaped like
    `like` (NOT_YET_COMPUTED: what init holds before the value is computed)."""
    return None if like is None else jax.tree.map(lambda x: np.full(x.shape, np.nan, x.dtype), like)


def _migrate(fields: dict, history: dict[str, np.ndarray], state_type, updates_done: int,
             eval_every: int | None):
    """A layout-v0 checkpoint as the current code writes it: (state, history).

    fields: the TrainState's fields under their v0 names. history: v0 kept each evaluation
    metric padded to every update [num_seeds, updates_done], zero except after updates
    (k + 1) * eval_every - 1, where evaluation k was taken; now it is [num_seeds, evaluations].
    """
    old_names = {old: new for new, old in V0_FIELDS.items()}
    state = state_type(**{old_names.get(name, name): value for name, value in fields.items()})
    padded = {k: v for k, v in history.items() if k in EVAL_METRIC_NAMES}
    if padded:
        widths = {v.shape[1] for v in padded.values()}
        if not eval_every or widths != {updates_done}:
            raise LayoutError(
                f"history: this checkpoint (layout v0) holds evaluations padded to {sorted(widths)} "
                f"updates; restoring them needs the run's eval_every (got {eval_every}) and "
                f"{updates_done} updates."
            )
        at = np.arange(1, updates_done // eval_every + 1) * eval_every - 1
        history = {**history, **{k: v[:, at] for k, v in padded.items()}}
    return state, history
