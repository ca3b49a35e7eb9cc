"""Where seeds run: a one-axis mesh over every device a run is given.

Seeds are independent, so the training program needs no collectives: `jax.shard_map` runs
the vmapped program on each device's contiguous slice of the seed axis, the same program
a single device runs on its seeds. The seed count is padded to a multiple of the device
count (the padding repeats the last seed's inputs) and the padding is dropped from the
results, so seed i's numbers do not depend on the device count (nor on the processes: in
a `jax.distributed` run the mesh spans every process's devices, every process builds the
same global inputs and trains the slice its own devices hold, see distributed.py).

Everything crossing the program's boundary is plain arrays: PRNG keys travel as their
uint32 key data (keys.to_data), so inputs can be laid out with `make_array_from_callback`
and results gathered with numpy on any number of processes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from purejaxvpg.algo import prng

AXIS = "seeds"
SPLIT = PartitionSpec(AXIS)  # leaves [num_seeds, ...]: each device holds a slice of the seeds
REPLICATED = PartitionSpec()  # the same value on every device (e.g. the first update of a block)


def select(devices=None) -> tuple[jax.Device, ...]:
    """The devices a run uses: None or "all" -> every device of the run (`jax.devices()`:
    all processes' devices in a distributed run); N -> the first N; a sequence of
    jax.Device -> those. ValueError naming `devices` otherwise, before anything compiles."""
    available = jax.devices()
    if devices is None or (isinstance(devices, str) and devices.strip().lower() == "all"):
        return tuple(available)
    if isinstance(devices, str):
        try:
            devices = int(devices)
        except ValueError:
            raise ValueError(f"devices: must be 'all' or a number of devices, got {devices!r}.") from None
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"devices: must be between 1 and {len(available)} (the {jax.default_backend()} devices "
                f"this process sees), or 'all'; got {devices}."
            )
        chosen = tuple(available[: int(devices)])
    elif isinstance(devices, Sequence) and devices and all(isinstance(d, jax.Device) for d in devices):
        if len(set(devices)) != len(devices) or any(d not in available for d in devices):
            raise ValueError(
                f"devices: must be distinct devices of jax.devices() ({len(available)} here), got {list(devices)}."
            )
        chosen = tuple(devices)
    else:
        raise ValueError(
            f"devices: must be None, 'all', a number of devices or a list of jax.Device, got {devices!r}."
        )
    if jax.process_count() > 1 and len(chosen) != len(available):
        raise ValueError(
            f"devices: a distributed run ({jax.process_count()} processes) uses every device of every "
            f"process ({len(available)}); got {len(chosen)}. Start fewer processes or hide devices "
            "(CUDA_VISIBLE_DEVICES) instead."
        )
    return chosen


def mesh(devices=None) -> Mesh:
    """The one-axis mesh ("seeds") over `select(devices)`."""
    return Mesh(np.array(select(devices)), (AXIS,))


def padded(num_seeds: int, count: int) -> int:
    """num_seeds rounded up to a multiple of `count` devices."""
    return count * math.ceil(num_seeds / count)


def pad(tree, size: int):
    """Host arrays [n, ...] -> [size, ...], the last row repeated: padding seeds train a
    copy of the last seed (the same shapes on every device: no second compile)."""
    def one(x):
        x = np.asarray(x)
        extra = size - x.shape[0]
        if extra < 0:
            raise ValueError(f"pad: size {size} is below the {x.shape[0]} seeds given (it would drop seeds).")
        return x if extra == 0 else np.concatenate([x, np.repeat(x[-1:], extra, axis=0)])

    return jax.tree.map(one, tree)


def abstract(tree, mesh: Mesh):
    """ShapeDtypeStructs of `tree`'s leaves laid out as `shard` lays them out: what a
    program is compiled for without building its inputs."""
    sharding = NamedSharding(mesh, SPLIT)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding), tree)


def shard(tree, mesh: Mesh):
    """Host arrays [n, ...] (the same on every process, n a multiple of the mesh size) ->
    global arrays split along the seed axis; each process lays out only its devices' rows."""
    sharding = NamedSharding(mesh, SPLIT)

    def one(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(one, tree)


def gather(tree):
    """Global arrays split over the seed axis -> numpy arrays holding every seed, on every
    process (a cross-process all-gather when some rows live on other processes)."""
    leaves = jax.tree.leaves(tree)
    if all(getattr(x, "is_fully_addressable", True) for x in leaves):
        return jax.tree.map(np.asarray, tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def over_seeds(fn, mesh: Mesh, in_specs=SPLIT):
    """shard_map(fn) over the seed axis: each device runs `fn` on its slice of every
    argument split by `in_specs` (default: all of them) and returns its slice of every
    output. No collectives: seeds never talk to each other."""
    return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=SPLIT, check_vma=False)


def host_keys(keys: jax.Array) -> np.ndarray:
    """Typed keys [n] -> their uint32 key data on the host [n, ...]: what `shard` lays out."""
    return np.asarray(prng.to_data(keys))
