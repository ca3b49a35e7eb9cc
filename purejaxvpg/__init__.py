"""purejaxvpg: vanilla policy gradient with GAE, one jitted and vmapped function per run.

    purejaxvpg/algo/    the pure, jittable algorithm (make_train and its pieces)
    purejaxvpg/host/    the driver that compiles and runs it, checkpoints, run directory
    purejaxvpg/report/  statistics, plots, exports
    purejaxvpg/tools/   the command line, sweeps, benchmarks
"""

import importlib
from typing import TYPE_CHECKING

from purejaxvpg.version import __version__

# name -> module that defines it: imported on first use, so `import purejaxvpg` touches no
# device and `purejaxvpg.distributed.initialize()` can still run first (jax.distributed
# must start before anything initialises a backend, which importing gymnax does)
_LAZY = {
    "seed_keys": "purejaxvpg.algo.prng",
    "EVAL_METRIC_NAMES": "purejaxvpg.algo.metrics", "METRIC_NAMES": "purejaxvpg.algo.metrics",
    "EvalMetrics": "purejaxvpg.algo.metrics", "UpdateMetrics": "purejaxvpg.algo.metrics",
    "HyperParams": "purejaxvpg.algo.program", "TrainState": "purejaxvpg.algo.program",
    "make_train": "purejaxvpg.algo.program",
    "PRESETS": "purejaxvpg.presets", "Config": "purejaxvpg.config",
    "TrainResult": "purejaxvpg.host.driver", "train": "purejaxvpg.host.chunks",
    "load_policy": "purejaxvpg.host.policy",
}
_MODULES = {"distributed": "purejaxvpg.host.distributed"}  # pjv.distributed.initialize(...)

if TYPE_CHECKING:  # for type checkers and IDEs: the names as if imported eagerly
    from purejaxvpg.algo.metrics import EVAL_METRIC_NAMES, METRIC_NAMES, EvalMetrics, UpdateMetrics
    from purejaxvpg.algo.prng import seed_keys
    from purejaxvpg.algo.program import HyperParams, TrainState, make_train
    from purejaxvpg.config import Config
    from purejaxvpg.host import distributed
    from purejaxvpg.host.chunks import train
    from purejaxvpg.host.driver import TrainResult
    from purejaxvpg.host.policy import load_policy
    from purejaxvpg.presets import PRESETS


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # once
        return value
    raise AttributeError(f"module 'purejaxvpg' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY, *_MODULES])


__all__ = [
    "__version__",
    "Config",
    "EVAL_METRIC_NAMES",
    "EvalMetrics",
    "HyperParams",
    "METRIC_NAMES",
    "PRESETS",
    "TrainResult",
    "TrainState",
    "UpdateMetrics",
    "distributed",
    "load_policy",
    "make_train",
    "seed_keys",
    "train",
]
