"""What a benchmark runs on, and how fast its device multiplies matrices (measured, not quoted).

Every results file of `benchmarks/` records `hardware()` and is named by `hardware_name`;
`matmul_peak` is the device's achieved dense float32 matmul throughput, the numerator of
`purejaxvpg bench`'s compute-bound estimate. Nothing here knows about the trainer.
"""

from __future__ import annotations

import os
import platform
import re
import time

import jax
import jax.numpy as jnp
import numpy as np

from purejaxvpg.tools.flops import flops_of


def hardware() -> dict:
    device = jax.devices()[0]
    return {
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "jaxlib": getattr(jax.lib, "__version__", None),
        "processor": platform.processor() or platform.machine(),
    }


def hardware_name(hw: dict) -> str:
    """A file-name slug: 'nvidia-h100-80gb-hbm3', or 'cpu-2core' on the CPU."""
    if hw["backend"] == "cpu":
        return f"cpu-{hw['cpu_count']}core"
    return re.sub(r"[^a-z0-9]+", "-", hw["device_kind"].lower()).strip("-")


def load_average() -> list[float] | None:
    """The host's 1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def peak_device_bytes() -> int | None:
    """The first device's peak memory in use so far (None where the backend does not say)."""
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # backends without memory statistics
        return None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def default_matmul_size() -> int:
    return 2048 if jax.default_backend() == "cpu" else 4096


def matmul_peak(n: int | None = None, repeats: int = 7, min_seconds: float = 0.05) -> dict:
    """The device's achieved dense float32 n x n @ n x n throughput, timed (median).

    The matmul runs at jax's default precision, the one the trainer's MLP runs at (on
    GPUs with TF32 that may be TF32): the estimate compares like with like. Each timed
    repeat is `calls` back-to-back calls (at least `min_seconds`), then block_until_ready.
    """
    n = n or default_matmul_size()
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul).lower(a, b).compile()
    jax.block_until_ready(matmul(a, b))  # warm-up
    start = time.perf_counter()
    jax.block_until_ready(matmul(a, b))
    calls = max(1, int(np.ceil(min_seconds / max(time.perf_counter() - start, 1e-9))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = matmul(a, b)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - start) / calls)
    seconds = float(np.median(times))
    return {
        "n": n,
        "dtype": "float32",
        "precision": str(jax.config.jax_default_matmul_precision or "default"),
        "repeats": repeats,
        "calls_per_repeat": calls,
        "seconds_median": seconds,
        "flops_per_second": 2 * n**3 / seconds,
        # XLA's compiled count of this matmul against 2n^3: does this backend count matmuls?
        "xla_flops_over_2n3": flops_of(matmul) / (2 * n**3),
    }
