"""What the trainer needs to know about an action space, read from the environment."""

from __future__ import annotations

import dataclasses

import numpy as np
from gymnax.environments import spaces


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
    if isinstance(space, spaces.Discrete):
        return ActionSpec(discrete=True, num_actions=int(space.n))
    if isinstance(space, spaces.Box):
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
