"""The memory preflight counts what a run holds (against the shapes the program really
produces and XLA's own buffer plan) and reads the limits the process is really under."""

import dataclasses
import math
import resource

import jax
import numpy as np
import pytest
from conftest import forbid_compiling

import purejaxvpg as pjv
from purejaxvpg.algo import envstack, program
from purejaxvpg.algo.evaluate import make_evaluate
from purejaxvpg.algo.program import Agent, HyperParams
from purejaxvpg.host import memory
from purejaxvpg.tools import cli

EVAL = pjv.Config(total_steps=4 * 32 * 4, num_envs=4, num_steps=32, eval_every=2, eval_episodes=4000)


def _nbytes(tree) -> int:
    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("encoder", [{}, {"env_id": "Breakout-MinAtar", "encoder": "cnn", "cnn_channels": (16, 8),
                                         "eval_episodes": 4}])
def test_state_and_metrics_parts_cover_what_the_program_holds(encoder):
    """Against jax.eval_shape of the real program: the TrainState (parameters, Adam
    moments, environment states with their statistics) and every per-update metric,
    evaluation metrics included (a hard-coded metric count would miss those); with the
    MLP and with a CNN (its convolution kernels, and a dense layer on its features)."""
    config = dataclasses.replace(EVAL, normalize_obs=True, scale_rewards=True, **encoder)
    agent, hp = Agent.build(config), HyperParams.from_config(config)
    state = jax.eval_shape(lambda k: program.init(agent, hp, k), jax.random.key(0))
    _, metrics, evals = jax.eval_shape(lambda k: program.train(agent, hp, k), jax.random.key(0))
    assert jax.tree.leaves(evals)[0].shape == (config.num_evals,)  # not one per update
    one = memory.estimate(agent)
    assert one.state >= 2 * _nbytes(state)  # the scan carry, in and out
    assert one.metrics == 2 * _nbytes((metrics, evals))  # on the device and on the host


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Breakout-MinAtar"])  # small and large observations
def test_evaluation_part_counts_every_evaluation_environment(env_id):
    """eval_episodes environments at once: at least their (obs, state) as reset really
    returns them, plus the actor's hidden activations, per environment."""
    config = dataclasses.replace(EVAL, env_id=env_id)
    one = memory.estimate(Agent.build(config))
    stack = envstack.build(config, 3, evaluation=True)
    per_env = _nbytes(stack.env.reset(jax.random.key(0), stack.env_params)) / 3
    hidden = sum(config.hidden_sizes) * 4
    assert one.evaluation >= config.eval_episodes * (per_env + hidden)
    assert memory.estimate(Agent.build(dataclasses.replace(config, eval_every=0, final_eval=False))).evaluation == 0
    # the final evaluation alone plays the same episodes at once
    assert memory.estimate(Agent.build(dataclasses.replace(config, eval_every=0))).evaluation == one.evaluation
    assert one.largest() == ("evaluation", "eval_episodes")


def test_evaluation_estimate_errs_high_against_xlas_buffer_plan():
    """The evaluation of one seed, 4000 environments at once, compiled alone: the estimate
    of that part is at least what XLA allocates for it (arguments, outputs, temporaries)
    and not 10x more. (The whole program: benchmarks/memory_estimate.py.)"""
    agent = Agent.build(EVAL)
    evaluate = make_evaluate(EVAL, agent.actor, agent.eval_stack)
    params = agent.actor.init(jax.random.key(0), np.zeros((1, *agent.stack.obs_shape), np.float32))
    plan = jax.jit(evaluate).lower(params, None, jax.random.key(1)).compile().memory_analysis()
    actual = plan.argument_size_in_bytes + plan.output_size_in_bytes + plan.temp_size_in_bytes
    assert actual <= memory.estimate(agent).evaluation <= 10 * actual


def test_evaluation_too_big_for_memory_is_refused_before_compiling(monkeypatch, capsys, tmp_path):
    """The probe case `train --eval-every 20 --eval-episodes <huge>`: refused with the field
    to lower, before anything compiles."""
    forbid_compiling(monkeypatch)
    argv = ["train", "--total-steps", "20480", "--num-seeds", "2", "--no-progress", "--eval-every", "20",
            "--eval-episodes", str(10**9), "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "eval_episodes: one seed needs an estimated" in err and "lower eval_episodes" in err


def _fake_proc(tmp_path, cgroup_line: str):
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text(cgroup_line + "\n")
    (proc / "status").write_text("Name:\tpython\nVmSize:\t 3000000 kB\nVmRSS:\t 100000 kB\n")
    return proc


def test_cgroup_v2_limit_of_the_cgroup_and_its_parents(tmp_path, monkeypatch):
    root = tmp_path / "cg"
    leaf = root / "a" / "b"
    leaf.mkdir(parents=True)
    (leaf / "memory.max").write_text("max\n")  # no limit of its own
    (leaf / "memory.stat").write_text("anon 100\nfile 999999\n")
    (root / "a" / "memory.max").write_text(f"{3 * 2**30}\n")  # the parent's applies
    (root / "a" / "memory.stat").write_text("anon 1073741824\nfile 5000\n")  # page cache not counted
    monkeypatch.setattr(memory, "CGROUP_ROOT", root)
    monkeypatch.setattr(memory, "PROC_SELF", _fake_proc(tmp_path, "0::/a/b"))
    assert memory.cgroup_available() == 2 * 2**30
    assert memory.host_limits()["cgroup"] == 2 * 2**30


def test_cgroup_v1_limit_in_bytes(tmp_path, monkeypatch):
    root = tmp_path / "cg"
    leaf = root / "memory" / "job"
    leaf.mkdir(parents=True)
    (leaf / "memory.limit_in_bytes").write_text(f"{2**30}\n")
    (leaf / "memory.stat").write_text("cache 5\nrss 7\ntotal_rss 1000\n")
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "unlimited"
    monkeypatch.setattr(memory, "CGROUP_ROOT", root)
    monkeypatch.setattr(memory, "PROC_SELF", _fake_proc(tmp_path, "4:memory:/job\n0::/"))
    assert memory.cgroup_available() == 2**30 - 1000


def test_the_tightest_limit_decides_and_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "PROC_SELF", _fake_proc(tmp_path, "0::/"))
    monkeypatch.setattr(memory, "CGROUP_ROOT", tmp_path / "none")
    limit = 3000000 * 1024 + 2**30  # RLIMIT_AS: 1 GiB beyond what is mapped (VmSize)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (limit, resource.RLIM_INFINITY))
    assert memory.host_limits()["RLIMIT_AS"] == 2**30
    if jax.default_backend() == "cpu":
        assert memory.device_limit() == (2**30, "RLIMIT_AS")
        big = pjv.Config(num_envs=4096, num_steps=128, total_steps=4096 * 128)  # ~1.5 GiB per seed
        with pytest.raises(ValueError, match=r"^num_envs: one seed needs .* \(RLIMIT_AS\)"):
            memory.seeds_that_fit(Agent.build(big))
