"""Does the same key give the same metrics twice on this device? Prints one line per run.

Run it twice: plain, and with XLA_FLAGS=--xla_gpu_deterministic_ops=true.
"""

import os

import numpy as np

import purejaxvpg as pjv

config = pjv.Config(num_envs=4, num_steps=128, value_iters=1)
runs = [pjv.train(config, num_seeds=4, seed=0) for _ in range(2)]
a, b = (r.metrics["policy_loss"] for r in runs)
print(
    f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}: identical={np.array_equal(a, b)} "
    f"max|diff| policy_loss={np.abs(a - b).max():.3g} "
    f"final returns {runs[0].metrics['episode_return'][:, -1]} vs {runs[1].metrics['episode_return'][:, -1]} "
    f"run {runs[0].run_seconds:.2f}s/{runs[1].run_seconds:.2f}s"
)
