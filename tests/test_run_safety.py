"""Nothing lost, no traceback: interrupts checkpoint and resume exactly, a run directory is
checked (and locked) before anything compiles or is written, damaged checkpoints fall back,
and a failing write or a closed stdout keeps the finished run's metrics."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import forbid_compiling

import purejaxvpg as pjv
from purejaxvpg.host import driver, rundir, runlock, session
from purejaxvpg.host.checkpoint import Checkpoints, steps
from purejaxvpg.tools import cli

# one tiny config for every in-process run here: 16 updates in blocks of 1, compiled once
CONFIG = pjv.Config(env_id="CartPole-v1", total_steps=4 * 8 * 16, num_envs=4, num_steps=8)
FLAGS = ["--env-id", "CartPole-v1", "--total-steps", str(CONFIG.total_steps), "--num-envs", "4",
         "--num-steps", "8", "--num-seeds", "2", "--log-every", "1", "--no-progress"]
OPTIONS = session.RunOptions(num_seeds=2, log_every=1, progress=False)


@pytest.fixture(scope="module")
def uninterrupted():
    """The reference: the same run, never stopped, no run directory."""
    return session.run(CONFIG, OPTIONS)


def _assert_same_metrics(run_dir, reference):
    with np.load(run_dir / "metrics.npz") as saved:
        for name in pjv.METRIC_NAMES:
            np.testing.assert_array_equal(saved[name], reference.metrics[name], err_msg=name)


def _strict_json(path):
    """json.loads that refuses NaN / Infinity (not JSON)."""
    return json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path} holds {c}"))


# --- interrupts --------------------------------------------------------------------------

def test_sigterm_checkpoints_the_last_block_and_resume_ends_like_an_uninterrupted_run(
    uninterrupted, tmp_path, capsys
):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "purejaxvpg", "train", *FLAGS, "--checkpoint-every", "1", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 240
    while not steps(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr  # 128 + SIGTERM
    assert "Traceback" not in stderr
    assert "SIGTERM: stopping after this block" in stderr  # the running block was finished
    done = steps(out)[-1]
    assert 0 < done < CONFIG.num_updates
    assert f"interrupted at update {done}; resume with --resume {out}" in stderr
    # resume, changing only what --resume allows: the checkpoint cadence
    assert cli.main(["train", "--resume", str(out), "--checkpoint-every", "0", "--no-progress"]) == 0
    _assert_same_metrics(out, uninterrupted)
    info = _strict_json(out / "config.json")
    [resumed] = info["resumes"]
    assert resumed["from_update"] == done and resumed["changed"] == {"checkpoint_every": 0}
    assert info["run"]["checkpoint_every"] == 1  # the run's own record stays as written


def test_a_signal_stops_the_process_in_stated_time_even_inside_a_long_compiled_call(tmp_path):
    """One block of 30,000 updates (a minute or more on a CPU): Python's handler cannot run
    until it returns, so the watchdog thread ends the process PUREJAXVPG_STOP_SECONDS after
    the SIGTERM, exit 143, one line, no traceback. The run had no checkpoint: it removed
    what it created (the probe found config.json left, blocking the same command)."""
    out = tmp_path / "run"
    updates = 30_000
    argv = ["--env-id", "CartPole-v1", "--total-steps", str(4 * 8 * updates), "--num-envs", "4",
            "--num-steps", "8", "--num-seeds", "1", "--log-every", str(updates), "--no-progress",
            "--out", str(out)]
    env = {**os.environ, "PUREJAXVPG_STOP_SECONDS": "2"}
    process = subprocess.Popen([sys.executable, "-m", "purejaxvpg", "train", *argv], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out / "config.json").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # config.json: compiled, the one block about to run
    time.sleep(1.0)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    took = time.monotonic() - sent
    assert process.returncode == 143, stderr
    assert 2.0 <= took < 10, took
    assert "SIGTERM: still inside a compiled call 2 s after the signal; stopping now (exit 143)" in stderr
    assert "Traceback" not in stderr and not out.exists()


def test_the_sigterm_handler_imports_nothing_so_it_works_in_the_middle_of_an_import(monkeypatch):
    """The probe sent SIGTERM while purejaxvpg.host.session was being imported: a handler
    that imported Interrupted from it raised ImportError ('partially initialized module')
    and printed a traceback. Here session is such a half-made module."""
    import types

    from purejaxvpg.host.watchdog import Interrupted

    previous = cli._signals_interrupt()
    try:
        handler = signal.getsignal(signal.SIGTERM)
        monkeypatch.setitem(sys.modules, "purejaxvpg.host.session", types.ModuleType("purejaxvpg.host.session"))
        with pytest.raises(Interrupted) as stop:
            handler(signal.SIGTERM, None)
        assert stop.value.exit_code == 143
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def test_a_signal_that_arrives_inside_a_gc_callback_is_not_lost():
    """Python may run a signal handler inside a gc callback (jax registers one), where a raised
    exception is printed ('Exception ignored in: <function _xla_gc_callback ...>') and dropped:
    the probe's sweep, sent SIGTERM while compiling, ran on and exited 0. The handler sends
    the signal again once the callback returned, and that one stops the command."""
    import gc

    from purejaxvpg.host.watchdog import Interrupted

    previous = cli._signals_interrupt()
    handler = signal.getsignal(signal.SIGTERM)

    def in_a_gc_callback(phase, info):  # as Python runs a handler during a collection
        if phase == "start":
            handler(signal.SIGTERM, sys._getframe())

    gc.callbacks.append(in_a_gc_callback)
    try:
        with pytest.raises(Interrupted) as stop:
            gc.collect()  # the handler inside the callback: nothing raised there
            gc.callbacks.remove(in_a_gc_callback)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # the signal, sent again, raises out here
                time.sleep(0.01)
        assert stop.value.exit_code == 143
    finally:
        if in_a_gc_callback in gc.callbacks:
            gc.callbacks.remove(in_a_gc_callback)
        for signum, old in previous.items():
            signal.signal(signum, old)


def test_a_signal_during_an_import_waits_for_the_import_to_finish(tmp_path, monkeypatch):
    """A SIGTERM 0.3-3 s after start landed in the middle of importing jax or scipy: the
    Interrupted raised there left modules half made ('partially initialized module'
    tracebacks later). The handler lets the import finish and the signal, sent again,
    stops the command after it."""
    import importlib

    from purejaxvpg.host.watchdog import Interrupted

    previous = cli._signals_interrupt()
    (tmp_path / "half_made.py").write_text(
        "import signal, sys\n"
        "signal.getsignal(signal.SIGTERM)(signal.SIGTERM, sys._getframe())  # as if it arrived here\n"
        "COMPLETE = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    imported = False
    try:
        with pytest.raises(Interrupted):
            imported = importlib.import_module("half_made").COMPLETE  # the import ran to its end
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                time.sleep(0.01)
        assert imported, "the signal stopped the import half way"
    finally:
        sys.modules.pop("half_made", None)
        for signum, old in previous.items():
            signal.signal(signum, old)


def test_the_console_script_skips_finalization_after_an_interruption(monkeypatch):
    """A signal can stop jax mid-compile; tearing that state down at exit crashed with SIGSEGV
    (1 of 5 SIGTERMs 4-6 s into a train). run() exits with os._exit for 130 / 143 only."""
    exits = []
    monkeypatch.setattr(os, "_exit", exits.append)
    for code, exited in ((143, [143]), (130, [130]), (0, []), (2, [])):
        exits.clear()
        monkeypatch.setattr(cli, "main", lambda code=code: code)
        assert cli.run() == code and exits == exited


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf"])
def test_a_bad_stop_seconds_variable_is_one_line(value, capsys, monkeypatch):
    monkeypatch.setenv("PUREJAXVPG_STOP_SECONDS", value)
    assert cli.main(["train", *FLAGS, "--out", "never-made"]) == 2
    assert "PUREJAXVPG_STOP_SECONDS: must be a positive number of seconds" in capsys.readouterr().err
    assert not os.path.exists("never-made")


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt, as in a terminal. A background job (`cmd &` in a
    script, as some CI runners start tests) inherits SIGINT ignored, and the session rightly
    keeps ignoring it there, so these tests set Python's own handler for their duration."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_finishes_and_checkpoints_the_running_block(tmp_path, capsys, monkeypatch):
    """SIGINT arrives while update 5 runs: that block ends, is checkpointed, exit 130.
    Before it, the default cadence (a tenth of 16 updates in blocks of 1: every 2) saved 2, 4."""
    saved = []
    save = Checkpoints.save
    monkeypatch.setattr(Checkpoints, "save", lambda self, n, *a: (saved.append(n), save(self, n, *a)))

    def advance(self, steps_done, rate):
        if steps_done == 5 * CONFIG.batch_size:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(session.Progress, "advance", advance)
    out = tmp_path / "run"
    assert cli.main(["train", *FLAGS, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert saved == [2, 4, 5] and steps(out)[-1] == 5
    assert f"interrupted at update 5; resume with --resume {out}" in err and "Traceback" not in err


@pytest.mark.usefixtures("ctrl_c_raises")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_before_the_first_checkpoint_says_so_and_keeps_nothing(signum, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(driver, "compile_blocks", lambda *a, **k: signal.raise_signal(signum))
    out = tmp_path / "run"
    assert cli.main(["train", *FLAGS, "--out", str(out)]) == 128 + signum
    assert "nothing to resume" in capsys.readouterr().err
    assert not out.exists()  # the same command can start again


@pytest.mark.usefixtures("ctrl_c_raises")
@pytest.mark.parametrize("how", ["interrupted", "failed"])
def test_a_run_ended_before_its_first_checkpoint_removes_only_what_it_created(how, tmp_path, capsys, monkeypatch):
    """--out holds the user's own tensorboard/ and wandb-run-id (no run: accepted). A run that
    ends after writing config.json and metrics.csv but before its first checkpoint removes
    those and its empty checkpoints/, leaves the user's files, and the same command runs again."""
    out = tmp_path / "run"
    (out / "tensorboard").mkdir(parents=True)
    (out / "tensorboard" / "events.out.mine").write_text("the user's events")
    (out / "wandb-run-id").write_text("users-run\n")
    written = []

    def advance(self, steps_done, rate):  # after the first block: config.json, metrics.csv written
        written.extend(sorted(p.name for p in out.iterdir()))
        raise RuntimeError("a failure in the middle of the run")

    argv = ["train", *FLAGS, "--checkpoint-every", "0", "--out", str(out)]
    with monkeypatch.context() as patch:
        if how == "interrupted":  # while compiling (a finished block would be checkpointed)
            patch.setattr(driver, "compile_blocks", lambda *a, **k: signal.raise_signal(signal.SIGINT))
            assert cli.main(argv) == 130
        else:
            patch.setattr(session.Progress, "advance", advance)
            with pytest.raises(RuntimeError, match="a failure in the middle"):
                cli.main(argv)
            assert {"config.json", "metrics.csv", "checkpoints"} <= set(written)
    assert sorted(p.name for p in out.iterdir()) == ["tensorboard", "wandb-run-id"]
    assert [p.name for p in (out / "tensorboard").iterdir()] == ["events.out.mine"]
    assert (out / "wandb-run-id").read_text() == "users-run\n"
    assert cli.main(argv) == 0  # the same command, again
    assert (out / "wandb-run-id").read_text() == "users-run\n"


EDITS = [("run", "seed_start", 1), ("run", "num_seeds", 3), ("run", "seed", 9),
         ("config", "total_steps", CONFIG.total_steps * 2), ("config", "policy_lr", 0.5),
         ("config", "hidden_sizes", [32, 32]), ("config", "env_id", "Acrobot-v1"),
         ("config", "env_params", [["max_steps_in_episode", 10]])]


def test_resume_refuses_a_config_json_edited_by_hand(tmp_path, capsys, monkeypatch):
    """The checkpoints carry the run they belong to (Config, base seed, seed range); a
    config.json that says otherwise is refused naming the field, before anything compiles,
    and the intact checkpoints are neither called damaged nor set aside."""
    out = tmp_path / "run"
    assert cli.main(["train", *FLAGS, "--out", str(out)]) == 0
    shutil.rmtree(out / "checkpoints" / "16")  # interrupted after update 14
    recorded = json.loads((out / "config.json").read_text())
    del recorded["results"]
    (out / "config.json").write_text(json.dumps(recorded))
    (out / "metrics.npz").unlink()
    original = (out / "config.json").read_text()
    capsys.readouterr()
    with monkeypatch.context() as patch:
        forbid_compiling(patch)
        for section, field, value in EDITS:
            edited = json.loads(original)
            was, edited[section][field] = edited[section][field], value
            (out / "config.json").write_text(json.dumps(edited))
            assert cli.main(["train", "--resume", str(out), "--no-progress"]) == 2, field
            err = capsys.readouterr().err
            name = field if section == "run" else f"config.{field}"
            assert f"resume: {out}/config.json does not describe the run its checkpoints hold" in err
            assert f"{name}: " in err and "damaged" not in err and "Traceback" not in err
            if field in ("seed_start", "num_seeds", "seed", "total_steps", "policy_lr"):
                assert f"{name}: {was!r} -> {value!r}" in err
            # eval and load_policy believe it no more than --resume (the probe: eval of an edited
            # num_seeds reported a seed the checkpoint does not hold; an edited env_id called
            # the intact checkpoints damaged)
            assert cli.main(["eval", str(out), "--episodes", "1"]) == 2, field
            err = capsys.readouterr().err
            assert f"run_dir: {out}/config.json does not describe the run its checkpoints hold" in err, err
            assert f"{name}: " in err and "damaged" not in err and len(err.strip().splitlines()) == 1
            with pytest.raises(ValueError, match="does not describe the run its checkpoints hold"):
                pjv.load_policy(out)
            assert steps(out) == [14] and not list((out / "checkpoints").glob("damaged*"))
    (out / "config.json").write_text(original)  # as the run wrote it: resumes
    assert cli.main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert "update 14 of 16" in capsys.readouterr().err


def test_default_checkpoint_cadence_is_a_tenth_of_the_run_in_whole_blocks():
    readme = pjv.Config(env_id="CartPole-v1")  # 500k steps / (4 x 128) = 976 updates, blocks of 20
    every = session.RunOptions().checkpoint_interval(readme)
    assert (readme.num_updates, session.RunOptions().block(readme), every) == (976, 20, 80)
    # blocks longer than a tenth of the run: one checkpoint per block
    assert session.RunOptions(log_every=300).checkpoint_interval(readme) == 300
    assert session.RunOptions(checkpoint_every=0).checkpoint_interval(readme) == 0


# --- the run directory -------------------------------------------------------------------

@pytest.mark.parametrize("held", ["config.json", "checkpoints/3", "metrics.csv"])
def test_a_directory_holding_a_run_is_refused_before_compiling(held, tmp_path, capsys, monkeypatch):
    forbid_compiling(monkeypatch)
    path = tmp_path / held
    path.mkdir(parents=True) if "/" in held else path.write_text("{}")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert cli.main(["train", *FLAGS, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err
    # --resume is offered only where it could work: it reads config.json
    assert ("--resume" in err) == (held == "config.json"), err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_session_refuses_a_fresh_run_into_old_checkpoints(tmp_path, monkeypatch):
    forbid_compiling(monkeypatch)
    (tmp_path / "checkpoints" / "6").mkdir(parents=True)
    with pytest.raises(ValueError, match="run_dir: .* already holds checkpoints"):
        session.run(CONFIG, OPTIONS, tmp_path)


def test_bad_paths_are_one_clear_error_and_leave_nothing(tmp_path, capsys, monkeypatch):
    forbid_compiling(monkeypatch)
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (["--out", str(afile)], "out: .* is a file"),
        (["--out", str(afile / "run")], "out: cannot create .* is a file"),
        (["--out", "/proc/purejaxvpg-test-run"], "out: cannot"),
        (["--config", str(tmp_path)], "config: .* is a directory without config.json"),
        (["--num-seeds", "10000000", "--out", str(tmp_path / "big")], "num_seeds: .* host memory"),
        (["--chunk-size", "10000000", "--out", str(tmp_path / "big")], "chunk_size: at most"),
    ]
    for flags, message in cases:
        assert cli.main(["train", *FLAGS, *flags]) == 2, flags
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert re.search(message, err), (message, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_out_is_a_clear_error(tmp_path, capsys, monkeypatch):
    forbid_compiling(monkeypatch)
    tmp_path.chmod(0o500)
    try:
        assert cli.main(["train", *FLAGS, "--out", str(tmp_path / "run")]) == 2
    finally:
        tmp_path.chmod(0o700)
    assert "out: cannot write to" in capsys.readouterr().err


def test_a_run_directory_in_use_is_refused(tmp_path, capsys, monkeypatch):
    """Another process trains in tmp_path (it holds the lock; still compiling, so no
    config.json yet): a second train there, a --resume and an eval of it are refused."""
    forbid_compiling(monkeypatch)
    lock = runlock.RunLock(tmp_path, create=False)
    try:
        for argv in (["train", *FLAGS, "--out", str(tmp_path)],
                     ["train", "--resume", str(tmp_path), "--no-progress"], ["eval", str(tmp_path)]):
            assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count(f"is in use by another purejaxvpg process (pid {os.getpid()})") == 3, err
    finally:
        lock.release()
    runlock.RunLock(tmp_path, create=False).release()  # free again once released


# --- --resume ----------------------------------------------------------------------------

def test_resume_refuses_flags_it_would_ignore(tmp_path, capsys, monkeypatch):
    forbid_compiling(monkeypatch)
    argv = ["train", "--resume", str(tmp_path), "--env-id", "Acrobot-v1", "--num-seeds", "5",
            "--out", "elsewhere", "--preset", "--log-every", "3"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    for flag in ("--env-id", "--num-seeds", "--out", "--preset", "--log-every"):
        assert flag in err, flag
    assert "--checkpoint-every" in err  # what may be given instead


def test_resume_without_checkpoint_trains_from_zero_and_keeps_the_original_record(
    uninterrupted, tmp_path, capsys
):
    rundir.write_config(tmp_path, CONFIG, {"num_seeds": 2, "log_every": 1, "progress": False})
    info = json.loads((tmp_path / "config.json").read_text())
    info["versions"]["jax"], info["git_commit"] = "0.0-original", "0123abc"  # what the run was made with
    (tmp_path / "config.json").write_text(json.dumps(info))
    assert cli.main(["train", "--resume", str(tmp_path), "--no-progress"]) == 0
    assert "has no checkpoint: training it from update 0" in capsys.readouterr().err
    _assert_same_metrics(tmp_path, uninterrupted)
    after = _strict_json(tmp_path / "config.json")
    assert after["versions"]["jax"] == "0.0-original" and after["git_commit"] == "0123abc"
    [resumed] = after["resumes"]
    assert resumed["from_update"] == 0 and resumed["versions"]["jax"] == jax.__version__
    assert "git_commit" in resumed and resumed["time"]
    assert after["results"]["updates_done"] == CONFIG.num_updates


def test_resuming_a_finished_run_without_results_writes_them_without_fake_timings(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", *FLAGS, "--out", str(out)]) == 0
    csv = (out / "metrics.csv").read_text()
    (out / "metrics.npz").unlink()  # e.g. lost after training
    assert cli.main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert (out / "metrics.csv").read_text() == csv
    results = _strict_json(out / "config.json")["results"]
    assert results["run_seconds"] is None and results["env_steps_per_second"] is None
    # finished, with results: nothing to do, nothing rewritten
    before = (out / "config.json").read_text()
    assert cli.main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert "is finished" in capsys.readouterr().err
    assert (out / "config.json").read_text() == before


# --- damaged checkpoints -----------------------------------------------------------------

def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_used(uninterrupted, tmp_path, capsys):
    session.run(CONFIG, OPTIONS, tmp_path, stop_after=6)  # checkpoints at 4 and 6 (every 2, newest 2 kept)
    assert steps(tmp_path) == [4, 6]
    for path in (tmp_path / "checkpoints" / "6").rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    capsys.readouterr()
    resumed = session.run(CONFIG, OPTIONS, tmp_path, resume=True)
    err = capsys.readouterr().err
    assert "checkpoint" in err and "/6 is damaged" in err and "using checkpoint 4" in err
    assert "Traceback" not in err and err.count("\n") <= 3
    assert resumed.updates_trained == CONFIG.num_updates - 4
    for name in pjv.METRIC_NAMES:
        np.testing.assert_array_equal(resumed.metrics[name], uninterrupted.metrics[name], err_msg=name)


def test_no_intact_checkpoint_is_a_clear_error(tmp_path):
    session.run(CONFIG, OPTIONS, tmp_path, stop_after=2)
    for path in (tmp_path / "checkpoints").rglob("*"):
        if path.is_file():
            path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"no intact checkpoint .*\(damaged: 2\)"):
        Checkpoints(tmp_path).restore(driver.abstract_state(CONFIG, 2))


# --- writes that fail, output that closes, memory ----------------------------------------

class _ClosedPipe:
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_closed_stdout_keeps_the_run_and_is_one_message(uninterrupted, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert cli.main(["train", *FLAGS, "--out", str(out)]) == 1
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert "broken pipe" in err and err.count("purejaxvpg: error") == 1 and "Traceback" not in err
    _assert_same_metrics(out, uninterrupted)
    assert steps(out)[-1] == CONFIG.num_updates
    assert _strict_json(out / "config.json")["results"]["updates_done"] == CONFIG.num_updates


def test_a_failing_final_checkpoint_keeps_the_metrics(uninterrupted, tmp_path, capsys, monkeypatch):
    save = Checkpoints.save

    def full_disk(self, updates_done, *args):
        if updates_done == CONFIG.num_updates:
            raise OSError(28, "No space left on device")
        save(self, updates_done, *args)

    monkeypatch.setattr(Checkpoints, "save", full_disk)
    out = tmp_path / "run"
    assert cli.main(["train", *FLAGS, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "metrics were written first" in err
    assert "Traceback" not in err
    _assert_same_metrics(out, uninterrupted)


def test_out_of_device_memory_names_what_to_lower(tmp_path, capsys, monkeypatch):
    def oom(*args, **kwargs):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 24.7G")

    monkeypatch.setattr(session, "run", oom)
    out = tmp_path / "run"
    assert cli.main(["train", *FLAGS, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "out of device memory" in err and "Traceback" not in err
    for flag in ("--num-seeds", "--num-envs", "--eval-episodes"):
        assert flag in err
    assert not out.exists()  # a failed run does not block its own --out


def test_json_written_by_the_project_has_no_nan():
    text = rundir.json_text({"a": float("nan"), "b": [np.float32(np.inf), 1.5], "c": np.int64(3),
                             "d": np.array([1.0, -np.inf]), "e": {"f": (float("-inf"),)}})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "a": None, "b": [None, 1.5], "c": 3, "d": [1.0, None], "e": {"f": [None]}}


def test_resume_keeps_the_runs_progress_choice_unless_given(tmp_path, monkeypatch):
    from purejaxvpg.tools import train_command

    out = tmp_path / "run"
    assert cli.main(["train", *FLAGS, "--out", str(out)]) == 0  # FLAGS hold --no-progress
    seen, run_session = [], train_command.run_session

    def spy(out_, config, options, *args, **kwargs):
        seen.append(options.progress)
        return run_session(out_, config, options, *args, **kwargs)

    monkeypatch.setattr(train_command, "run_session", spy)
    for extra in ([], ["--progress"]):
        shutil.rmtree(out / "checkpoints" / "16")  # interrupted after update 14
        recorded = json.loads((out / "config.json").read_text())
        recorded.pop("results", None)
        (out / "config.json").write_text(json.dumps(recorded))
        (out / "metrics.npz").unlink()
        assert cli.main(["train", "--resume", str(out), *extra]) == 0
    assert seen == [False, True]
