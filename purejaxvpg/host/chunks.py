"""Finished chunks of a chunked run, written as they complete so none is lost.

One `.npz` per chunk (its metrics and final-state leaves) in `results_dir`, beside a
`run.json` that names the run (config, seed keys, a sweep's hyperparameters) and the code
that computed it (package version, jax versions, a digest of the source, git commit), so
a rerun only reuses chunks of the very same run computed by the very same code. Both
checks happen before anything compiles.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import jax
import numpy as np

from purejaxvpg.algo import prng
from purejaxvpg.host.provenance import code_version, same_code

MARKER = "run.json"


class ChunkStore:
    """`results_dir` holding the finished chunks of one run. Raises ValueError (naming
    results_dir) when the directory is a file, holds something else, holds another run's
    chunks or chunks computed by other code; creates it (and run.json) otherwise."""

    def __init__(self, results_dir: str | Path, config, keys: jax.Array, hparams=None):
        self.dir = Path(results_dir)
        identity = {
            "config": dataclasses.asdict(config),
            "keys": np.asarray(jax.random.key_data(keys)).tolist(),
        }
        if hparams is not None:  # a sweep: each run's hyperparameters are part of the run
            identity["hparams"] = {k: np.asarray(v).tolist() for k, v in vars(hparams).items()}
        identity = json.loads(json.dumps(identity))  # tuples -> lists, as read back
        code = code_version()
        marker = self.dir / MARKER
        how = f"delete {self.dir} to train these seeds again, or pass another results_dir"
        if self.dir.exists() and not self.dir.is_dir():
            raise ValueError(f"results_dir: {self.dir} is a file, not a directory; pass a directory.")
        if not marker.exists():
            if self.dir.exists() and any(self.dir.iterdir()):
                raise ValueError(
                    f"results_dir: {self.dir} is not empty and holds no {MARKER}: it is not a "
                    "chunk directory of purejaxvpg.train (a `purejaxvpg train` run directory "
                    "cannot be one); pass an empty or new directory."
                )
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                _write_atomic(marker, json.dumps({"run": identity, "code": code}, indent=1))
            except OSError as error:
                raise ValueError(f"results_dir: cannot write to {self.dir}: {error.strerror or error}.") from error
            return
        try:
            saved = json.loads(marker.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"results_dir: {marker} cannot be read ({error}); {how}.") from error
        if not isinstance(saved, dict) or "code" not in saved:
            raise ValueError(
                f"results_dir: {self.dir} holds chunks written by an older purejaxvpg that did not "
                f"record its code version; stale chunks are never mixed with new ones: {how}."
            )
        if saved.get("run") != identity:
            raise ValueError(
                f"results_dir: {self.dir} holds chunks of a different run (config or seeds differ); "
                f"{how}."
            )
        if not same_code(saved.get("code"), code):
            was = saved.get("code") or {}
            raise ValueError(
                f"results_dir: {self.dir} holds chunks computed by other code "
                f"(purejaxvpg {was.get('purejaxvpg')}, commit {was.get('git_commit')}, source "
                f"{str(was.get('source_sha256'))[:12]}, jax {was.get('jax')}; this is purejaxvpg "
                f"{code['purejaxvpg']}, commit {code['git_commit']}, source "
                f"{code['source_sha256'][:12]}, jax {code['jax']}); stale chunks are never mixed "
                f"with new ones: {how}."
            )

    def _path(self, first: int, last: int) -> Path:
        return self.dir / f"chunk-{first:07d}-{last:07d}.npz"

    def save(self, first: int, last: int, out) -> None:
        """Write atomically: a crash mid-write leaves no half-written chunk behind."""
        leaves = jax.tree.leaves(out)
        tmp = self._path(first, last).with_suffix(".tmp.npz")
        np.savez(tmp, *[np.asarray(x)[: last - first] for x in prng.to_data(leaves)])
        os.replace(tmp, self._path(first, last))

    def load(self, first: int, last: int, abstract):
        """The chunk's (final_state, metrics, evaluations), or None if it has not been written.

        `abstract` is the output structure (jax.eval_shape), used to restore PRNG keys."""
        path = self._path(first, last)
        if not path.exists():
            return None
        leaves, treedef = jax.tree.flatten(abstract)
        with np.load(path) as data:
            arrays = [data[f"arr_{i}"] for i in range(len(leaves))]
        return prng.from_data(treedef.unflatten(arrays), abstract)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
