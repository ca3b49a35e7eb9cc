"""Finished chunks of a chunked run, written as they complete so none is lost.

One `.npz` per chunk (its metrics and final-state leaves) in `results_dir`, beside a
`run.json` that names the config and the seed keys, so a rerun only reuses chunks of the
very same run.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import jax
import numpy as np


class ChunkStore:
    def __init__(self, results_dir: str | Path, config, keys: jax.Array, hparams=None):
        self.dir = Path(results_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        identity = {
            "config": dataclasses.asdict(config),
            "keys": np.asarray(jax.random.key_data(keys)).tolist(),
        }
        if hparams is not None:  # a sweep: each run's hyperparameters are part of the run
            identity["hparams"] = {k: np.asarray(v).tolist() for k, v in vars(hparams).items()}
        marker = self.dir / "run.json"
        if marker.exists():
            if json.loads(marker.read_text()) != json.loads(json.dumps(identity)):
                raise ValueError(
                    f"results_dir: {self.dir} holds chunks of a different run (config or seeds differ)."
                )
        else:
            marker.write_text(json.dumps(identity))

    def _path(self, first: int, last: int) -> Path:
        return self.dir / f"chunk-{first:07d}-{last:07d}.npz"

    def save(self, first: int, last: int, out) -> None:
        """Write atomically: a crash mid-write leaves no half-written chunk behind."""
        leaves = jax.tree.leaves(out)
        tmp = self._path(first, last).with_suffix(".tmp.npz")
        np.savez(tmp, *[np.asarray(jax.random.key_data(x) if is_key(x) else x)[: last - first] for x in leaves])
        os.replace(tmp, self._path(first, last))

    def load(self, first: int, last: int, abstract):
        """The chunk's (final_state, metrics), or None if it has not been written.

        `abstract` is the output structure (jax.eval_shape), used to restore PRNG keys."""
        path = self._path(first, last)
        if not path.exists():
            return None
        leaves, treedef = jax.tree.flatten(abstract)
        with np.load(path) as data:
            arrays = [data[f"arr_{i}"] for i in range(len(leaves))]
        arrays = [jax.random.wrap_key_data(a) if is_key(leaf) else a for a, leaf in zip(arrays, leaves)]
        return treedef.unflatten(arrays)


def to_host(x, count: int):
    """The first `count` seeds of a leaf, as numpy (PRNG keys stay key arrays)."""
    return x[:count] if is_key(x) else np.asarray(x[:count])


def concatenate(*parts):
    """Join per-chunk leaves along the seed axis."""
    return jax.numpy.concatenate(parts) if is_key(parts[0]) else np.concatenate(parts)


def is_key(x) -> bool:
    """Whether x is a typed PRNG key array (stored as its key data, restored with wrap_key_data)."""
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
