"""purejaxvpg: vanilla policy gradient with GAE, one jitted and vmapped function per run."""

from purejaxvpg.config import PRESETS, Config
from purejaxvpg.train import (
    METRIC_NAMES,
    HyperParams,
    TrainResult,
    TrainState,
    make_train,
    seed_keys,
    train,
)

__all__ = [
    "Config",
    "HyperParams",
    "METRIC_NAMES",
    "PRESETS",
    "TrainResult",
    "TrainState",
    "make_train",
    "seed_keys",
    "train",
]
