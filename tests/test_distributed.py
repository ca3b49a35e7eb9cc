"""Several processes as one run (`purejaxvpg train --distributed`): 2 processes x 2 virtual
CPU devices on localhost, through jax.distributed and gloo collectives, against one process
with the same 4 devices (the same per-device batches: the same numbers, bit for bit).

One fixture runs everything once (each process compiles; the processes share a compilation
cache): a fresh 2-process run stopped by SIGTERM to process 1 alone, resumed and killed
(kill -9 of process 1), resumed again to the end."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import types

import numpy as np
import pytest

import purejaxvpg as pjv
from purejaxvpg.tools import cli

# 24 updates in blocks of 2, a checkpoint after each: a signal after the first one lands mid-run
ARGS = ["--env-id", "CartPole-v1", "--total-steps", "3072", "--num-envs", "4", "--num-steps", "32",
        "--num-seeds", "5", "--seed", "3", "--log-every", "2", "--no-progress"]
HEARTBEAT = 5  # seconds: how long the survivor waits for the lost process to be named
WAIT = 300  # seconds: a subprocess that takes longer than this hangs (the test fails, nothing waits forever)


def _gloo() -> bool:
    from jax._src.lib import _jax  # jaxlib builds without gloo lack this factory

    return hasattr(_jax, "make_gloo_tcp_collectives")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


STARTED = []  # every subprocess, so that a failed check leaves none running


def _start(argv, devices, cwd, log, cache):
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(devices), "JAX_PLATFORMS": "cpu",
           "JAX_COMPILATION_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}
    out, err = open(cwd / f"{log}.out", "w"), open(cwd / f"{log}.err", "w")
    STARTED.append(subprocess.Popen([sys.executable, "-m", "purejaxvpg.tools.cli", *argv], cwd=cwd, env=env,
                                    stdout=out, stderr=err))
    return STARTED[-1]


def _pair(argv, cwd, log, cache):
    """Processes 0 and 1 of one distributed run on localhost."""
    port = _free_port()
    return [_start([*argv, "--distributed", "--coordinator-address", f"localhost:{port}", "--num-processes", "2",
                    "--process-id", str(i), "--heartbeat-timeout", str(HEARTBEAT)], 2, cwd, f"{log}{i}", cache)
            for i in range(2)]


def _text(cwd, name) -> str:
    return (cwd / name).read_text()


def _newest(folder) -> int:
    return max([int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else [], default=0)


def _after_checkpoint(pair, folder, past: int, root, log) -> None:
    """Wait until the run writes a checkpoint newer than `past` (it is mid-run then)."""
    deadline = time.monotonic() + WAIT
    while _newest(folder) <= past:
        assert all(p.poll() is None for p in pair), _text(root, f"{log}0.err")[-3000:]
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process with 4 devices, and the same run on 2 x 2: SIGTERM to process 1 after
    its first checkpoint, --resume and kill -9 of process 1 after a newer one, --resume."""
    if not _gloo():
        pytest.skip("this jaxlib has no gloo CPU collectives: a multi-process CPU run cannot all-gather")
    root, cache = tmp_path_factory.mktemp("distributed"), tmp_path_factory.mktemp("jax-cache")
    try:
        yield _run_all(root, cache)
    finally:
        for process in STARTED:
            if process.poll() is None:
                process.kill()
                process.wait()


def _run_all(root, cache):
    folder = root / "run" / "checkpoints"
    reference = _start(["train", *ARGS, "--checkpoint-every", "0", "--out", "one"], 4, root, "one", cache)
    first = _pair(["train", *ARGS, "--checkpoint-every", "2", "--out", "run"], root, "first", cache)
    _after_checkpoint(first, folder, 0, root, "first")
    first[1].send_signal(signal.SIGTERM)
    terminated = [p.wait(WAIT) for p in first]
    stopped_at = _newest(folder)
    second = _pair(["train", "--resume", "run"], root, "second", cache)
    _after_checkpoint(second, folder, stopped_at, root, "second")
    second[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    survivor = second[0].wait(WAIT)
    seconds = time.monotonic() - killed
    second[1].wait(WAIT)
    assert reference.wait(WAIT) == 0, _text(root, "one.err")[-3000:]
    third = _pair(["train", "--resume", "run", "--checkpoint-every", "0"], root, "third", cache)
    codes = [p.wait(WAIT) for p in third]
    return types.SimpleNamespace(root=root, terminated=terminated, stopped_at=stopped_at, survivor=survivor,
                                 seconds=seconds, codes=codes, pids=[p.pid for p in third])


@pytest.mark.slow  # the 2-process fixture: ~80 s on 2 cores; CI runs -m slow
def test_sigterm_to_one_process_stops_every_process_after_the_same_block(runs):
    """A scheduler's SIGTERM reaches the processes at different times: all of them learn it
    after the same block, checkpoint it together and exit 143, resumable."""
    assert runs.terminated == [143, 143], _text(runs.root, "first0.err")[-3000:]
    for i in range(2):
        assert f"interrupted at update {runs.stopped_at}; resume with --resume run" in _text(runs.root, f"first{i}.err")


@pytest.mark.slow  # the 2-process fixture: ~80 s on 2 cores; CI runs -m slow
def test_a_killed_process_makes_the_other_exit_with_an_error_naming_it_in_bounded_time(runs):
    """The survivor says at once that a process stopped; the lost one is named once the
    coordination service has missed its heartbeats, by purejaxvpg (exit 1) or, when jax's
    coordination service ends the process first, by jax (SIGABRT)."""
    err = _text(runs.root, "second0.err")
    assert runs.survivor in (1, -signal.SIGABRT), err[-3000:]
    assert runs.seconds < 6 * HEARTBEAT, err[-3000:]  # the heartbeat timeout, not forever
    assert ("process 0 of 2: another process of this distributed run stopped" in err
            and f"(heartbeat timeout {HEARTBEAT} s)" in err), err[-3000:]
    named = (f"lost process(es) 1 of 2 (no heartbeat within the heartbeat timeout {HEARTBEAT} s)" in err
             if runs.survivor == 1 else "stopped sending heartbeats):\n1\n" in err)
    assert named, err[-3000:]
    assert "Traceback" not in err


@pytest.mark.slow  # the 2-process fixture: ~80 s on 2 cores; CI runs -m slow
def test_a_resumed_distributed_run_equals_one_process_and_process_0_alone_writes(runs):
    """--resume with 2 processes continues the killed run to the numbers of one process
    with the same 4 devices (every metric, every seed, bit for bit), and the run directory
    is written once: by process 0 (it holds the lock; process 1 prints nothing)."""
    assert runs.codes == [0, 0], _text(runs.root, "third0.err")[-3000:] + _text(runs.root, "third1.err")[-3000:]
    run, one = runs.root / "run", runs.root / "one"
    got, want = np.load(run / "metrics.npz"), np.load(one / "metrics.npz")
    assert sorted(got.files) == sorted(want.files)
    assert want["episode_return"].shape == (5, 24)
    for name in want.files:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert _text(run, "metrics.csv") == _text(one, "metrics.csv")  # each row once, not once per process
    info = json.loads(_text(run, "config.json"))
    assert (info["device_count"], info["process_count"]) == (4, 2)
    assert [r["from_update"] for r in info["resumes"]][0] == runs.stopped_at  # once per resume, not per process
    assert len(info["resumes"]) == 2
    assert "results" in info
    assert _text(run, ".purejaxvpg.lock").strip() == str(runs.pids[0])
    assert "wrote run/" in _text(runs.root, "third0.out")
    assert "wrote" not in _text(runs.root, "third1.out") and "final return" not in _text(runs.root, "third1.out")
    assert "resuming" not in _text(runs.root, "third1.err")


ADDRESS = {"coordinator_address": "localhost:1"}


@pytest.mark.parametrize("settings, field", [
    (dict(ADDRESS, num_processes=2, process_id=2), "process_id"),
    (dict(ADDRESS, num_processes=2, process_id=-1), "process_id"),
    (dict(ADDRESS, num_processes=0, process_id=0), "num_processes"),
    (dict(coordinator_address="localhost", num_processes=2, process_id=0), "coordinator_address"),
    (dict(num_processes=2), "coordinator_address, process_id missing"),
    (dict(ADDRESS, num_processes=2, process_id=0, heartbeat_timeout_seconds=0), "heartbeat_timeout_seconds"),
])
def test_bad_distributed_settings_are_refused_naming_the_field(settings, field, tmp_path, capsys):
    """Before jax.distributed starts (nothing joins, nothing is written): a ValueError, and
    from the command line exit 2 with one line."""
    with pytest.raises(ValueError, match=f"distributed: {field}"):
        pjv.distributed.initialize(**settings)
    flags = {"coordinator_address": "--coordinator-address", "num_processes": "--num-processes",
             "process_id": "--process-id", "heartbeat_timeout_seconds": "--heartbeat-timeout"}
    argv = [part for name, value in settings.items() for part in (flags[name], str(value))]
    assert cli.main(["train", "--distributed", *argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"distributed: {field}" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_distributed_flags_need_distributed(tmp_path, capsys):
    assert cli.main(["train", "--process-id", "0", "--out", str(tmp_path / "run")]) == 2
    assert "--process-id need --distributed" in capsys.readouterr().err


LINGER = """import sys, time
from purejaxvpg.tools import cli
delay = float(sys.argv.pop())
main = cli.main
def lingering(argv=None):  # this process reaches its exit later than the coordinator does
    code = main(argv)
    time.sleep(delay)
    return code
cli.main = lingering
sys.exit(cli.run())
"""


@pytest.mark.slow  # two processes compile: ~40 s on 2 cores
def test_after_sigterm_the_coordinator_waits_for_a_slower_process(tmp_path):
    """Process 0 hosts jax's coordination service: had it left at once after an interruption
    (os._exit), process 1, still on its way out, would be aborted by jax (exit -6: a CI flake)."""
    if not _gloo():
        pytest.skip("this jaxlib has no gloo CPU collectives")
    port, cache = _free_port(), tmp_path / "cache"
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2", "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(cache)}
    pair = []
    for i in range(2):
        argv = ["train", *ARGS, "--checkpoint-every", "2", "--out", "run", "--distributed", "--coordinator-address",
                f"localhost:{port}", "--num-processes", "2", "--process-id", str(i), "--heartbeat-timeout",
                str(HEARTBEAT), "3" if i == 1 else "0"]
        out, err = open(tmp_path / f"{i}.out", "w"), open(tmp_path / f"{i}.err", "w")
        STARTED.append(subprocess.Popen([sys.executable, "-c", LINGER, *argv], cwd=tmp_path, env=env, stdout=out,
                                        stderr=err))
        pair.append(STARTED[-1])
    _after_checkpoint(pair, tmp_path / "run" / "checkpoints", 0, tmp_path, "")
    pair[1].send_signal(signal.SIGTERM)
    codes = [p.wait(WAIT) for p in pair]
    assert codes == [143, 143], _text(tmp_path, "1.err")[-2000:]
