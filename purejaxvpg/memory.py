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


def seeds_that_fit(config: Config, obs_shape: tuple[int, ...], action_size: int) -> int:
    """How many seeds one call can hold; raise ValueError when not even one fits."""
    per_seed = estimate_bytes(config, obs_shape, action_size, 1)
    have = device_bytes()
    if per_seed > have:
        raise ValueError(
            f"num_envs: one seed needs an estimated {per_seed / 2**30:.1f} GiB (num_envs * num_steps "
            f"= {config.batch_size}, {config.num_updates} updates) but the device has "
            f"{have / 2**30:.1f} GiB; lower num_envs or num_steps."
        )
    return int(have // per_seed)
