"""A conservative estimate of device memory for a run, checked before compiling.

The estimate is deliberately simple and errs high: what one seed holds at its peak
(one rollout, the activations of the batched forward/backward passes, parameters with
their Adam moments and gradients, and the per-update metrics) times the number of seeds.
"""

from __future__ import annotations

import math
import os

import jax

from purejaxvpg.config import Config

_FLOAT = 4  # bytes
_METRICS_PER_UPDATE = 16


def _mlp_params(inputs: int, hidden: tuple[int, ...], outputs: int) -> int:
    sizes = (inputs, *hidden, outputs)
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def estimate_bytes(
    config: Config, obs_shape: tuple[int, ...], action_size: int, num_seeds: int
) -> int:
    """Estimated peak bytes of `train(config)` over `num_seeds` seeds."""
    obs_size = math.prod(obs_shape)
    n = config.batch_size
    # rollout: obs, next_obs, action, reward, flags and episode stats per transition
    rollout = n * (2 * obs_size + action_size + 8)
    # activations kept for backprop: critic over 2n inputs, actor over n, both hidden stacks,
    # x3 for forward, backward and XLA temporaries
    activations = 3 * (3 * n) * (sum(config.hidden_sizes) + obs_size + action_size)
    params = _mlp_params(obs_size, config.hidden_sizes, action_size) + _mlp_params(
        obs_size, config.hidden_sizes, 1
    )
    optimizer = 4 * params  # params, grads, Adam mu and nu
    metrics = config.num_updates * _METRICS_PER_UPDATE
    per_seed = (rollout + activations + optimizer + metrics) * _FLOAT
    return per_seed * num_seeds


def device_bytes(device: jax.Device | None = None) -> int:
    """Memory the device can give us: the allocator's limit, or host RAM on CPU."""
    device = device or jax.devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # some backends do not implement memory_stats
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits(
    config: Config, obs_shape: tuple[int, ...], action_size: int, num_seeds: int
) -> None:
    """Raise ValueError naming num_seeds when the estimate exceeds the device's memory."""
    need = estimate_bytes(config, obs_shape, action_size, num_seeds)
    have = device_bytes()
    if need > have:
        per_seed = max(1, need // num_seeds)
        raise ValueError(
            f"num_seeds: {num_seeds} seeds need an estimated {need / 2**30:.1f} GiB but the "
            f"device has {have / 2**30:.1f} GiB; at most {have // per_seed} seeds fit with "
            f"num_envs * num_steps = {config.batch_size} and {config.num_updates} updates."
        )
