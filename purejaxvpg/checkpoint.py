"""Checkpoints of a run with orbax: the whole batched TrainState plus the metrics so far.

("history" is the metrics so far: orbax reserves the item name "metrics".)
The TrainState holds everything a run needs to continue exactly (parameters, optimizer
states, environment states with their observation-normalisation statistics, PRNG keys),
so a resumed run ends with the same metrics as one that never stopped.
orbax writes each checkpoint to a temporary directory and renames it when complete, so a
process killed while writing leaves the previous checkpoint the latest readable one.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from purejaxvpg.chunks import is_key


def _to_data(tree):
    """Typed PRNG keys -> their uint32 key data (orbax stores plain arrays)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


class Checkpoints:
    """`RUN_DIR/checkpoints/<updates done>/`, the newest `max_to_keep` kept."""

    def __init__(self, run_dir: str | Path, max_to_keep: int = 2):
        self.dir = Path(run_dir).absolute() / "checkpoints"
        self.manager = ocp.CheckpointManager(
            self.dir, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep)
        )

    def save(self, updates_done: int, state, metrics: dict[str, np.ndarray]) -> None:
        """state: batched TrainState [num_seeds, ...]; metrics: name -> [num_seeds, updates_done]."""
        self.manager.save(
            updates_done,
            args=ocp.args.Composite(
                train_state=ocp.args.StandardSave(_to_data(state)),
                history=ocp.args.StandardSave({k: np.asarray(v) for k, v in metrics.items()}),
            ),
            force=True,
        )
        self.manager.wait_until_finished()

    def latest(self) -> int | None:
        """Updates done at the newest complete checkpoint, or None."""
        return self.manager.latest_step()

    def restore(self, abstract_state, step: int | None = None):
        """(updates_done, state, metrics) of checkpoint `step` (default: the newest).

        `abstract_state` is the state's structure (jax.eval_shape of the batched init)."""
        step = self.latest() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.dir}")
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
        self.manager.close()
