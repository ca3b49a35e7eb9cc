"""The package's own spaces, and what the trainer needs to know about an action space.

`Discrete` and `Box` are what purejaxvpg's environments, wrappers and adapters declare, so
that none of them imports gymnax (seaborn, scipy and pandas come with it). Code that reads a
space reads it by duck typing (`is_discrete`, `is_box`), so gymnax's own spaces, which users'
gymnax environments return, are read the same way without importing gymnax.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


class Discrete:
    """The actions 0 .. n-1, as scalars of `dtype` (shape ())."""

    def __init__(self, n: int, dtype=jnp.int32):
        if int(n) < 0:
            raise ValueError(f"Discrete: n must be >= 0, got {n}.")
        self.n, self.shape, self.dtype = n, (), jnp.dtype(dtype)

    def __repr__(self) -> str:
        return f"Discrete({self.n})"

    def sample(self, key) -> jax.Array:
        """One uniform choice: int [] of `dtype`."""
        return jax.random.randint(key, (), 0, self.n, dtype=self.dtype)

    def contains(self, x) -> jax.Array:
        """bool []: 0 <= x < n."""
        x = jnp.asarray(x)
        return jnp.logical_and(x >= 0, x < self.n)


class Box:
    """Arrays of `shape` and `dtype` between `low` and `high` (scalars or arrays broadcast to
    `shape`; kept as given, so the environment's own bounds reach the trainer unchanged)."""

    def __init__(self, low, high, shape, dtype=jnp.float32):
        self.low, self.high, self.shape, self.dtype = low, high, tuple(int(d) for d in shape), dtype

    def __repr__(self) -> str:
        return f"Box({self.low}, {self.high}, {self.shape}, {jnp.dtype(self.dtype).name})"

    def sample(self, key) -> jax.Array:
        """Uniform in the box: [*shape] of `dtype` (bounds must be finite to be meaningful)."""
        uniform = jax.random.uniform(key, self.shape, minval=self.low, maxval=self.high)
        return uniform.astype(self.dtype)

    def contains(self, x) -> jax.Array:
        """bool []: every element within [low, high]."""
        x = jnp.asarray(x)
        return jnp.logical_and(jnp.all(x >= self.low), jnp.all(x <= self.high))


def is_discrete(space) -> bool:
    """A space of `n` scalar choices: ours, gymnax's or Gymnasium's Discrete (shape (), which
    leaves out Gymnasium's MultiBinary, whose `n` is a count of bits)."""
    return hasattr(space, "n") and not hasattr(space, "low") and tuple(getattr(space, "shape", ())) == ()


def is_box(space) -> bool:
    """A space with `low`, `high` and `shape`: ours, gymnax's or Gymnasium's Box."""
    return all(hasattr(space, name) for name in ("low", "high", "shape")) and not hasattr(space, "n")


@dataclasses.dataclass(frozen=True)
class ActionSpec:
    """Static description of an action space.

    discrete: categorical over ``num_actions`` choices when True; otherwise a box of
    shape ``shape`` with bounds ``low``/``high`` (numpy arrays of that shape).
    """

    discrete: bool
    num_actions: int = 0
    shape: tuple[int, ...] = ()
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Number of network outputs for the action head."""
        return self.num_actions if self.discrete else int(np.prod(self.shape))


def action_spec(env, params) -> ActionSpec:
    """Read the action space of ``env``: Discrete -> categorical, Box -> Gaussian.

    Raises ValueError for any other space, before anything is compiled.
    """
    space = env.action_space(params)
    if is_discrete(space):
        return ActionSpec(discrete=True, num_actions=int(space.n))
    if is_box(space):
        shape = tuple(int(d) for d in space.shape)
        low = np.broadcast_to(np.asarray(space.low, dtype=np.float32), shape).copy()
        high = np.broadcast_to(np.asarray(space.high, dtype=np.float32), shape).copy()
        if not np.all(low < high):
            raise ValueError(f"env_id: {env.name} has an empty action box [{low}, {high}].")
        return ActionSpec(discrete=False, shape=shape, low=low, high=high)
    raise ValueError(
        f"env_id: {env.name} has action space {type(space).__name__}; "
        "purejaxvpg supports Discrete (categorical) and Box (diagonal Gaussian)."
    )
