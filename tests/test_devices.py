"""Seeds split over devices: each seed's numbers are the ones one device gives it.

One subprocess with 4 virtual CPU devices (JAX_NUM_CPU_DEVICES must be set before jax is
imported, so never in the pytest process) runs every sharded case and its reference, the
plain one-device program `jit(vmap(train))` of the same keys, and writes both as .npz
files; the tests here read them back with numpy. Per-seed numbers are compared with a
tolerance: on CPU, XLA's reductions may differ in the last float bits between batch sizes
(4 devices run 2 seeds each, the reference all of them at once).

    python tests/test_devices.py OUT_DIR   # what the fixture runs (with JAX_NUM_CPU_DEVICES=4)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# CartPole, 6 updates of 4 envs x 16 steps, evaluated after updates 2, 4 and 6 (2 episodes)
FLAGS = ["--env-id", "CartPole-v1", "--num-envs", "4", "--num-steps", "16", "--total-steps", "384",
         "--eval-every", "2", "--eval-episodes", "2"]


# ---------------------------------------------------------------- the subprocess (4 devices)


def _flat(metrics: dict, evals: dict, actor_params) -> dict:
    """name -> [seeds, ...] arrays of a run: its metrics, evaluations and final actor parameters."""
    import jax

    params = {f"actor_params/{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(actor_params))}
    return {**{k: np.asarray(v) for k, v in {**metrics, **evals}.items()}, **params}


def _interrupt_after(session, updates: int):
    """session.run whose run gets SIGINT once `updates` updates are done: the real Ctrl-C path
    (the block finishes, is checkpointed, the CLI exits 130)."""
    original = session.run

    def run(*args, on_block=None, **kwargs):
        def block(done, metrics, evals):
            if on_block is not None:
                on_block(done, metrics, evals)
            if done >= updates:
                os.kill(os.getpid(), signal.SIGINT)

        return original(*args, on_block=block, **kwargs)

    return run


def _cli(argv: list[str]) -> tuple[int, str]:
    """(exit code, stderr) of `purejaxvpg ARGV` in this process (argparse's exit included)."""
    from purejaxvpg.tools import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as stop:
            code = stop.code
    return code, err.getvalue()


def main(out: Path) -> None:
    import jax
    import jax.numpy as jnp

    from purejaxvpg.algo.evaluate import make_evaluate
    from purejaxvpg.algo.prng import eval_keys, seed_keys
    from purejaxvpg.host import driver, placement, policy, session
    from purejaxvpg.tools import flags, sweep
    from purejaxvpg.tools.parser import build_parser

    assert len(jax.devices()) == 4, jax.devices()
    # half the compile time; the sharded programs and their references are compiled alike
    jax.config.update("jax_disable_most_optimizations", True)
    config = flags.config_from_args(build_parser().parse_args(["train", *FLAGS])).validate()
    facts = {}

    def save(case, sharded: dict, reference: dict):
        np.savez(out / f"{case}.npz", **{f"sharded/{k}": v for k, v in sharded.items()},
                 **{f"reference/{k}": v for k, v in reference.items()})

    def flat(result) -> dict:
        return _flat(result.metrics, result.eval_metrics, result.final_state.actor_params)

    # how shard() lays 7 seeds padded to 8 over 4 devices, and which device runs which rows
    mesh = placement.mesh(4)
    rows = placement.pad(np.arange(7 * 2, dtype=np.uint32).reshape(7, 2), placement.padded(7, 4))
    laid = placement.shard(rows, mesh)
    which = placement.over_seeds(lambda x: (x, jax.lax.axis_index(placement.AXIS) + 0 * x[:, 0]), mesh)(laid)
    facts["layout"] = {
        "shards": [[d.id, np.asarray(s.data).tolist()] for s in laid.addressable_shards for d in [s.device]],
        "echo": np.asarray(which[0]).tolist(), "device_of_row": np.asarray(which[1]).tolist(),
    }

    # (a, b, c, d) a sweep of 2 settings x 5 seeds, evaluated inside the run, in chunks of 8 runs
    # over 4 devices (2 per device): the second chunk is 2 runs padded to 8
    swept = sweep.run(config, [{"policy_lr": config.policy_lr}, {"policy_lr": 3e-3}], num_seeds=5, reps=50,
                      devices=4, chunk_size=8)
    facts["sweep"] = {"devices": swept.result.devices, "chunk_size": swept.result.chunk_size,
                      "policy_lr": np.asarray(swept.result.hparams.policy_lr).tolist()}
    # the reference: one device, no mesh, the plain jit(vmap(train)) of every run's key and
    # hyperparameters at once (run i: setting i // 5, seed i % 5)
    keys = seed_keys(0, 5)
    state, metrics, evals = driver.whole_run(driver.prepare(config), sweep=True)(
        jnp.concatenate([keys, keys]), swept.result.hparams)
    assert len(jax.tree.leaves(state.actor_params)[0].devices()) == 1
    reference = _flat(metrics.as_dict(), evals.as_dict(), state.actor_params)
    save("sweep", flat(swept.result), reference)
    # the same sweep on 2 devices, 4 runs per device, unchunked: bit for bit the 4-device run
    on_two = sweep.run(config, [{"policy_lr": config.policy_lr}, {"policy_lr": 3e-3}], num_seeds=5, reps=50,
                       devices=2)
    save("sweep_two_devices", flat(on_two.result), flat(swept.result))

    # (e) the CLI: 5 seeds on 4 devices, Ctrl-C after update 2, resumed on 2 devices
    run_dir = out / "run"
    args = ["train", *FLAGS, "--num-seeds", "5", "--log-every", "2", "--no-progress"]
    plain_run = session.run
    session.run = _interrupt_after(session, 2)
    interrupted = _cli([*args, "--devices", "4", "--out", str(run_dir)])
    session.run = plain_run
    checkpoints = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
    resumed = _cli(["train", "--resume", str(run_dir), "--devices", "2", "--no-progress"])
    record = json.loads((run_dir / "config.json").read_text())
    facts["cli"] = {"interrupted": interrupted, "checkpoints_then": checkpoints, "resumed": resumed,
                    "devices_recorded": record["run"]["devices"], "resumes": record.get("resumes", [])}
    with np.load(run_dir / "metrics.npz") as saved:
        save("cli_resumed", {k: saved[k] for k in reference if not k.startswith("actor_params")},
             {k: v[:5] for k, v in reference.items() if not k.startswith("actor_params")})  # setting 0

    # `eval --devices 4` against the plain jit(vmap(evaluate)) of the same checkpoint and keys
    facts["eval"] = _cli(["eval", str(run_dir), "--episodes", "2", "--devices", "4"])
    run_config, num_seeds, _, state, _ = policy.restore_latest(run_dir)
    agent = driver.prepare(run_config)
    evaluate = jax.jit(jax.vmap(make_evaluate(run_config, agent.actor, agent.stack_of(2))))
    plain = evaluate(state.actor_params, state.runner.env_state, eval_keys(0, num_seeds)).as_dict()
    written = json.loads((run_dir / "eval.json").read_text())
    save("eval", {f"eval_return_{m}": np.asarray(written[m]["return_per_seed"]) for m in ("greedy", "stochastic")},
         {f"eval_return_{m}": np.asarray(plain[f"eval_return_{m}"]) for m in ("greedy", "stochastic")})

    # more devices than there are: refused naming the flag, before anything is written
    refused = out / "refused"
    facts["refused"] = {
        "train": _cli([*args, "--devices", "5", "--out", str(refused)]),
        "resume": _cli(["train", "--resume", str(run_dir), "--devices", "5"]),
        "sweep": _cli(["sweep", *FLAGS, "--grid", "policy_lr=1e-3", "--devices", "5"]),
        "eval": _cli(["eval", str(run_dir), "--devices", "5"]),
        "zero": _cli([*args, "--devices", "0", "--out", str(refused)]),
        "word": _cli([*args, "--devices", "some", "--out", str(refused)]),
        "written": refused.exists(),
    }
    (out / "facts.json").write_text(json.dumps(facts))


if __name__ == "__main__":
    main(Path(sys.argv[1]))


# ---------------------------------------------------------------- the tests (this process: 1 device)


@pytest.fixture(scope="module")
def four(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("devices")
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "4", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, __file__, str(out)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def facts(out: Path) -> dict:
    return json.loads((out / "facts.json").read_text())


# Against the one-device program the numbers agree to the last float bits only: XLA compiles
# a program partitioned over several devices with a few other fusions than the one-device
# program (the same on 2 or 4 devices, on 1 or 2 processes: bit for bit, tested below and in
# test_distributed.py), and those round a few sums differently (~1e-7 relative).
TOLERANCE = dict(rtol=1e-5, atol=1e-6)


def assert_same_per_seed(out: Path, case: str, num_seeds: int, exact: bool = False) -> list[str]:
    """Every array of the sharded run is the reference's, seed by seed (no padding left):
    bit for bit with `exact`, else to TOLERANCE."""
    import chex

    with np.load(out / f"{case}.npz") as data:
        sharded = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("sharded/")}
        reference = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("reference/")}
    assert sorted(sharded) == sorted(reference)
    assert {v.shape[0] for v in reference.values()} == {num_seeds}
    chex.assert_trees_all_equal_shapes(sharded, reference)
    if exact:
        chex.assert_trees_all_equal(sharded, reference)
    else:
        chex.assert_trees_all_close(sharded, reference, **TOLERANCE)
    return sorted(sharded)


def test_seeds_are_laid_out_one_slice_per_device(four):
    layout = facts(four)["layout"]
    rows = np.arange(14).reshape(7, 2).tolist() + [[12, 13]]  # 7 seeds padded with a copy of the last
    assert layout["shards"] == [[d, rows[2 * d: 2 * d + 2]] for d in range(4)]
    assert layout["echo"] == rows
    assert layout["device_of_row"] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_a_sweep_in_chunks_over_devices_with_evaluation(four):
    sweep = facts(four)["sweep"]
    assert (sweep["devices"], sweep["chunk_size"]) == (4, 8)
    np.testing.assert_allclose(sweep["policy_lr"], [1e-3] * 5 + [3e-3] * 5, rtol=1e-6)
    names = assert_same_per_seed(four, "sweep", 10)
    assert {"eval_return_greedy", "episode_return", "actor_params/0"} <= set(names)
    assert_same_per_seed(four, "sweep_two_devices", 10, exact=True)  # 2 devices, unchunked, == 4 in chunks


def test_cli_run_interrupted_on_4_devices_resumed_on_2(four):
    cli = facts(four)["cli"]
    assert cli["interrupted"][0] == 130, cli["interrupted"][1]
    assert cli["checkpoints_then"] == [2]
    assert cli["resumed"][0] == 0, cli["resumed"][1]
    assert cli["devices_recorded"] == 4
    assert [r["from_update"] for r in cli["resumes"]] == [2]
    assert cli["resumes"][0]["changed"] == {"devices": 2}
    assert "eval_return_stochastic" in assert_same_per_seed(four, "cli_resumed", 5)


def test_eval_over_devices(four):
    assert facts(four)["eval"][0] == 0, facts(four)["eval"][1]
    assert_same_per_seed(four, "eval", 5)


def test_more_devices_than_there_are_is_refused_naming_the_flag(four):
    refused = facts(four)["refused"]
    for name in ("train", "resume", "sweep", "eval"):
        code, err = refused[name]
        assert code == 2, (name, err)
        assert "--devices: must be between 1 and 4" in err and "got 5" in err, (name, err)
        assert "Traceback" not in err
    for name in ("zero", "word"):
        code, err = refused[name]
        assert code == 2 and "--devices" in err and "'all' or a number of devices >= 1" in err, (name, err)
    assert not refused["written"]


# the checks of the devices module's inputs, in this process (1 CPU device)


@pytest.mark.parametrize("devices, message", [
    (0, "between 1 and 1"), (2, "between 1 and 1"), (-1, "between 1 and 1"), ("two", "'all' or a number"),
    (True, "must be None, 'all'"), (1.0, "must be None, 'all'"), ([], "must be None, 'all'"),
    (["cpu:0"], "must be None, 'all'"),
])
def test_select_refuses(devices, message):
    from purejaxvpg.host import placement

    with pytest.raises(ValueError, match="^devices: ") as error:
        placement.select(devices)
    assert message in str(error.value)


def test_select_refuses_a_device_twice():
    import jax

    from purejaxvpg.host import placement

    with pytest.raises(ValueError, match="distinct devices"):
        placement.select([jax.devices()[0]] * 2)
    assert placement.select(None) == placement.select("all") == placement.select(" ALL ") == tuple(jax.devices())
    assert placement.select("1") == placement.select([jax.devices()[0]]) == (jax.devices()[0],)


def test_padded_and_pad():
    from purejaxvpg.host import placement

    assert [placement.padded(n, 4) for n in (1, 3, 4, 5, 8, 9)] == [4, 4, 4, 8, 8, 12]
    assert [placement.padded(n, 1) for n in (1, 7)] == [1, 7]
    x = np.arange(10.0).reshape(5, 2)
    tree = {"x": x, "k": np.arange(5, dtype=np.uint32)}
    out = placement.pad(tree, 8)
    np.testing.assert_array_equal(out["x"], np.vstack([x, [[8.0, 9.0]] * 3]))  # the last seed, repeated
    np.testing.assert_array_equal(out["k"], [0, 1, 2, 3, 4, 4, 4, 4])
    assert placement.pad(tree, 5)["x"] is not None and np.array_equal(placement.pad(tree, 5)["x"], x)
    with pytest.raises(ValueError, match="pad"):
        placement.pad(tree, 4)  # fewer rows than the seeds: it would drop seeds


def test_bench_devices_counts(capsys):
    """`bench --devices`: a list skips counts above the devices there are (1 here), a single
    one is refused naming the flag, before anything compiles."""
    import purejaxvpg as pjv
    from purejaxvpg.tools import bench, cli

    assert bench.parse_devices("1,2,4,8") == [1, 2, 4, 8]
    for text in ("0", "1,1", "two", ""):
        with pytest.raises(ValueError, match="^--devices: expected distinct"):
            bench.parse_devices(text)
    with pytest.raises(ValueError, match="^--devices: must be between 1 and 1 .* got 2"):
        bench.parse_devices("2")
    tiny = pjv.Config(env_id="CartPole-v1", num_envs=4, num_steps=16, total_steps=384)
    assert bench.measure(tiny, 3, devices=2) == {"num_seeds": 3, "devices": 2,
                                                 "skipped": "2 devices asked for, 1 available"}
    assert cli.main(["bench", "--scenario", "cartpole-500k", "--devices", "2"]) == 2
    assert "--devices: must be between 1 and 1" in capsys.readouterr().err
