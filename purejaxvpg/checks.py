"""The range checks every user-facing number goes through: each raises a ValueError that
names the field and the allowed range (before anything compiles), never a traceback
from deep inside jax.

`Range` is what a `Config` field declares when a sweep may batch it (config.SWEEPABLE):
the same check then guards the config's value and every value of a sweep.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np


def require_int(name: str, value, low: int, high: int | None = None) -> int:
    """`value` as a Python int; ValueError naming `name` unless it is an integer (Python
    or numpy, not a bool) in [low, high]."""
    upper = "" if high is None else f" and <= {high}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: must be an integer >= {low}{upper}, got {value!r}.")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name}: must be an integer >= {low}{upper}, got {value}.")
    return value


def require_choice(name: str, value, allowed: tuple[str, ...]) -> None:
    """ValueError naming `name` and the allowed values unless `value` is one of them."""
    if value not in allowed:
        raise ValueError(f"{name}: must be one of {', '.join(allowed)}, got {value!r}.")


def require_finite_number(name: str, value, low: float, high: float = math.inf) -> None:
    """ValueError naming `name` unless `value` is a finite int or float (not a bool) in [low, high]."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not (low <= value <= high):
        upper = "" if high == math.inf else f" and <= {high}"
        raise ValueError(f"{name}: must be a finite number >= {low}{upper}, got {value!r}.")


def require_unit_interval(name: str, value) -> None:
    """ValueError naming `name` unless `value` is a number in [0, 1]."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not (0.0 <= value <= 1.0):
        raise ValueError(f"{name}: must be in [0, 1], got {value!r}.")


@dataclasses.dataclass(frozen=True)
class Range:
    """The allowed values of a sweepable hyperparameter: "unit" [0, 1] (a probability, a
    discount), "nonnegative" (a finite number >= 0: a rate, a coefficient) or "count" (an
    integer >= 1)."""

    kind: str

    def check(self, label: str, value) -> None:
        """ValueError naming `label` unless `value` is in this range."""
        if self.kind == "unit":
            require_unit_interval(label, value)
        elif self.kind == "count":
            require_int(label, value, low=1)
        else:
            require_finite_number(label, value, low=0.0)


UNIT, NONNEGATIVE, COUNT = Range("unit"), Range("nonnegative"), Range("count")
