"""Checkpoints of a run with orbax: the whole batched TrainState plus the metrics so far.

("history" is the metrics so far: orbax reserves the item name "metrics".)
The TrainState holds everything a run needs to continue exactly (parameters, optimizer
states, environment states with their observation-normalisation statistics, PRNG keys),
so a resumed run ends with the same metrics as one that never stopped.
orbax writes each checkpoint to a temporary directory and renames it when complete, so a
process killed while writing leaves the previous checkpoint the latest readable one. A
checkpoint damaged afterwards (truncated files, a full disk) is named on stderr and the
previous intact one restored instead.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from purejaxvpg.chunks import is_key


def _to_data(tree):
    """Typed PRNG keys -> their uint32 key data (orbax stores plain arrays)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


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
        return not (record.levelno >= logging.ERROR and "orbax" in record.pathname)


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
        self.manager = ocp.CheckpointManager(
            self.dir, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep)
        )

    def save(self, updates_done: int, state, metrics: dict[str, np.ndarray]) -> None:
        """state: batched TrainState [num_seeds, ...]; metrics: name -> [num_seeds, updates_done].

        Asynchronous: training goes on while the files are written (`wait`, `close`); a
        failure of the previous save is raised here (OSError)."""
        self.wait()
        with self._as_os_error():
            self.manager.save(
                updates_done,
                args=ocp.args.Composite(
                    train_state=ocp.args.StandardSave(_to_data(state)),
                    history=ocp.args.StandardSave({k: np.asarray(v) for k, v in metrics.items()}),
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

    def latest(self) -> int | None:
        """Updates done at the newest complete checkpoint, or None."""
        return self.manager.latest_step()

    def restore(self, abstract_state, step: int | None = None, set_aside_damaged: bool = False):
        """(updates_done, state, metrics) of checkpoint `step` (default: the newest intact one).

        `abstract_state` is the state's structure (jax.eval_shape of the batched init).
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
                restored = self._restore(abstract_state, candidate)
            except Exception as error:  # orbax/tensorstore raise many kinds on damaged files
                reason = f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
                damaged.append(candidate)
                print(f"purejaxvpg: warning: checkpoint {self.dir / str(candidate)} is damaged ({reason})"
                      + ("; trying the previous one" if candidate != candidates[-1] else ""), file=sys.stderr)
                continue
            if set_aside_damaged and damaged:
                for bad in damaged:
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

    def _restore(self, abstract_state, step: int):
        target = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(
                (*x.shape, *jax.random.key_data(jax.random.key(0)).shape), np.uint32
            ) if is_key(x) else jax.ShapeDtypeStruct(x.shape, x.dtype),
            abstract_state,
        )
        out = self.manager.restore(
            step,
            args=ocp.args.Composite(
                train_state=ocp.args.StandardRestore(target), history=ocp.args.StandardRestore()
            ),
        )
        state = jax.tree.map(
            lambda saved, like: jax.random.wrap_key_data(saved) if is_key(like) else saved,
            out.train_state, abstract_state,
        )
        metrics = {k: np.asarray(v) for k, v in out.history.items()}
        return step, state, metrics

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.manager.close()
            self._quiet.__exit__(None, None, None)
