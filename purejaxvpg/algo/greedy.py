"""The greedy-action schedule of the source text: "the amount of greedy action selection will
be scheduled to increase over time, to progress from pure exploration ... to pure exploitation".

At update k (0-based, of N = num_updates) every rollout step of every environment takes the
policy's mode with probability p(k), else a sample of the policy:

    linear:  p(k) = s + (e - s) * k / K                      K = max(N - 1, 1)
    cosine:  p(k) = e + (s - e) * (1 + cos(pi * k / K)) / 2

(s = greedy_start, e = greedy_end, so p(0) = s and p(N - 1) = e). Off (the default run's
program unchanged) while both ends are the constant 0.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import optax

from purejaxvpg.config import Config


def is_on(start, end) -> bool:
    """Whether the rollout flips the greedy coin: decided when tracing, so a run whose ends
    are the Python number 0 (every default run) compiles to the program it had before the
    schedule existed. Batched ends (a sweep's arrays) always flip it; p = 0 then never
    chooses the mode, and the actions and environment keys are those of a run without it."""
    fixed = lambda x: x is None or (isinstance(x, numbers.Number) and x == 0)  # noqa: E731
    return not (fixed(start) and fixed(end))


def probability(config: Config, start, end, update) -> jax.Array:
    """p(update) of the config's schedule shape between `start` and `end` (numbers or traced
    scalars; None counts as 0) over config.num_updates updates. Uses optax's schedules."""
    start = 0.0 if start is None else start
    end = 0.0 if end is None else end
    steps = max(config.num_updates - 1, 1)
    if config.greedy_schedule == "linear":
        schedule = optax.linear_schedule(init_value=start, end_value=end, transition_steps=steps)
        return jnp.asarray(schedule(update), jnp.float32)
    if config.greedy_schedule == "cosine":
        schedule = optax.cosine_decay_schedule(init_value=jnp.subtract(start, end), decay_steps=steps)
        return jnp.asarray(end + schedule(update), jnp.float32)
    raise ValueError(f"greedy_schedule: unknown shape {config.greedy_schedule!r}")


def choose(dist, key_action: jax.Array, key_coin: jax.Array, p) -> tuple[jax.Array, jax.Array]:
    """(action, greedy [E] bool): per environment, the mode with probability p, else a sample.

    The coin has its own key (prng.step_keys), never the action key: the sample a step
    would have drawn without the schedule is the one it draws with it.
    """
    sample = dist.sample(key_action)
    greedy = jax.random.uniform(key_coin, sample.shape[:1]) < p
    mode = dist.mode()
    pick = greedy.reshape(greedy.shape + (1,) * (sample.ndim - 1))  # [E] -> [E, 1, ...]
    return jnp.where(pick, mode, sample), greedy
