"""purejaxvpg: vanilla policy gradient with GAE, one jitted and vmapped function per run."""

from purejaxvpg.config import Config
from purejaxvpg.train import METRIC_NAMES, TrainResult, TrainState, make_train, seed_keys, train

__all__ = [
    "Config",
    "METRIC_NAMES",
    "TrainResult",
    "TrainState",
    "make_train",
    "seed_keys",
    "train",
]
