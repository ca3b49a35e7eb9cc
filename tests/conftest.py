import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import pytest

import purejaxvpg as pjv
from purejaxvpg.host import compile_cache, driver

# A fresh persistent compile cache for this test session, shared by its workers and the
# console scripts they start (they inherit the variable): the suite never reads a cache an
# earlier session or the user's own runs left, and it is removed at the end.
if compile_cache.ENV not in os.environ:
    import atexit
    import tempfile

    os.environ[compile_cache.ENV] = tempfile.mkdtemp(prefix="purejaxvpg-test-compile-cache-")
    atexit.register(shutil.rmtree, os.environ[compile_cache.ENV], True)


@pytest.fixture(scope="session")
def tiny_config():
    """A few updates of CartPole: enough to exercise every code path in seconds. Without the
    final evaluation, whose own tests (test_final_eval.py) use their configs: here it would
    only add its compile to every run built from this one."""
    return pjv.Config(env_id="CartPole-v1", total_steps=4 * 32 * 6, num_envs=4, num_steps=32, final_eval=False)


@pytest.fixture(scope="session")
def tiny_result(tiny_config):
    return pjv.train(tiny_config, num_seeds=8, seed=0)


@pytest.fixture(scope="session")
def solved_cartpole():
    """8 seeds of the README's CartPole preset (= the defaults, 500k steps): the one slow
    CartPole training of the suite, shared by the learning check and the policy test."""
    return pjv.train(pjv.Config.preset("CartPole-v1"), num_seeds=8, seed=0)


def smoke_train(env_id: str, num_envs: int, num_steps: int, updates: int, num_seeds: int = 2):
    """A suite's training smoke run: `updates` updates of num_envs x num_steps, no
    evaluations; every metric [num_seeds, updates] and finite. Returns the TrainResult."""
    import numpy as np

    config = pjv.Config(env_id=env_id, total_steps=num_envs * num_steps * updates, num_envs=num_envs,
                        num_steps=num_steps, eval_every=0)
    result = pjv.train(config, num_seeds=num_seeds)
    assert result.metrics["policy_loss"].shape == (num_seeds, updates)
    for name, values in result.metrics.items():
        assert np.all(np.isfinite(values)), name
    return result


def replace(config, **changes):
    return dataclasses.replace(config, **changes)


class Compiles(Exception):
    """Raised instead of compiling: the work got past every check that comes first."""


def _refuse(*args, **kwargs):
    raise Compiles


def forbid_compiling(monkeypatch) -> None:
    """For the rest of the test, compiling raises Compiles, so a refusal that must come
    before compiling fails the test if it comes later (or not at all)."""
    monkeypatch.setattr(jax.stages.Lowered, "compile", _refuse)
    monkeypatch.setattr(driver, "compile_blocks", _refuse)  # it caches compiled programs


def forbid_jit(monkeypatch) -> None:
    """Stricter and cheaper than forbid_compiling: even building a jitted function raises
    Compiles (argument checks that come before any tracing)."""
    monkeypatch.setattr(jax, "jit", _refuse)


def interrupt_then_resume_and_evaluate(out: Path, newest: int, pythonpath: str | None = None, timeout: int = 600):
    """Make the run directory `out` look interrupted (checkpoint `newest` and the results gone),
    then `train --resume` and `eval` it in a fresh interpreter; returns the finished process."""
    shutil.rmtree(out / "checkpoints" / str(newest))
    recorded = json.loads((out / "config.json").read_text())
    del recorded["results"]
    (out / "config.json").write_text(json.dumps(recorded))
    (out / "metrics.npz").unlink()
    script = ("import sys; from purejaxvpg.tools import cli; "
              f"sys.exit(cli.main(['train', '--resume', {str(out)!r}, '--no-progress']) "
              f"or cli.main(['eval', {str(out)!r}, '--episodes', '2']))")
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          cwd=out.parent, timeout=timeout)
