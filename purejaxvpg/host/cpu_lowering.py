"""How our programs are lowered for the CPU: the Threefry hash unrolled, as on GPU and TPU.

JAX lowers `threefry2x32` (every key split and random draw) for the CPU as a `fori_loop`
of 5 iterations, to keep other programs' compiles short. In our training program that
is 5 small while loops inside every rollout step (key split, action sample, the
environment's step and auto-reset), 25 loop iterations of ~16 tiny ops each per step: more
than the step's own ~75 ops. Unrolled, each hash is one fused kernel. Same bits (the same
20 rounds, tested); 2-core CPU, cartpole-500k, value_iters=1, medians of interleaved
repeats: compile 3.6 -> 3.4 s at 1 seed and 5.0 -> 3.4 s at 16 seeds, run time 1.31x faster
at 1 seed, 1.17x at 16 (benchmarks/results/cpu-2core-where-time-goes.md).

JAX has no public switch for this, so `unrolled_threefry` swaps the registered CPU lowering
rule (jax._src, checked on entry) only while our programs lower, and puts the previous
rule back: a user's own programs lower as JAX would. Where the private names moved in a
later JAX it does nothing, and programs lower as JAX's default (slower to run, same numbers).
"""

from __future__ import annotations

import contextlib


def _parts():
    """(threefry primitive, JAX's platform-independent (unrolled) rule entry, the CPU rule
    table) or None if JAX changed."""
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as threefry

        primitive = threefry.threefry2x32_p
        return primitive, mlir._lowerings[primitive], mlir._platform_specific_lowerings["cpu"]
    except (ImportError, AttributeError, KeyError):
        return None


def available() -> bool:
    return _parts() is not None


@contextlib.contextmanager
def unrolled_threefry():
    """While inside: the CPU lowers threefry2x32 unrolled. Wrap `.lower(...)` calls."""
    parts = _parts()
    if parts is None:
        yield
        return
    primitive, unrolled, table = parts
    missing = object()
    before = table.get(primitive, missing)
    table[primitive] = unrolled
    try:
        yield
    finally:
        if before is missing:
            table.pop(primitive, None)
        else:
            table[primitive] = before
