"""purejaxvpg: vanilla policy gradient with GAE, one jitted and vmapped function per run.

    purejaxvpg/algo/    the pure, jittable algorithm (make_train and its pieces)
    purejaxvpg/host/    the driver that compiles and runs it, checkpoints, run directory
    purejaxvpg/report/  statistics, plots, exports
    purejaxvpg/tools/   the command line, sweeps, benchmarks
"""

from purejaxvpg.algo.keys import seed_keys
from purejaxvpg.algo.metrics import EVAL_METRIC_NAMES, METRIC_NAMES, EvalMetrics, UpdateMetrics
from purejaxvpg.algo.program import HyperParams, TrainState, make_train
from purejaxvpg.config import PRESETS, Config
from purejaxvpg.host.driver import TrainResult, train
from purejaxvpg.host.policy import load_policy

__all__ = [
    "Config",
    "EVAL_METRIC_NAMES",
    "EvalMetrics",
    "HyperParams",
    "METRIC_NAMES",
    "PRESETS",
    "TrainResult",
    "TrainState",
    "UpdateMetrics",
    "load_policy",
    "make_train",
    "seed_keys",
    "train",
]
