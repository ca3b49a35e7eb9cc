"""Libraries' background reports (orbax's threads when a checkpoint write fails) go to
RUN_DIR/library.log; the terminal gets the project's own lines and one note."""

import logging
import os
import shutil
import subprocess
import sys
import threading
import warnings

import pytest

from purejaxvpg.host.library_log import LibraryLog


class _RaisesInDel:
    def __del__(self):
        raise RuntimeError("Event loop is closed")


def _fail_in_a_thread():
    raise TimeoutError("a background write timed out")


def test_every_kind_of_background_report_goes_to_the_file_and_the_main_thread_is_untouched(tmp_path, capsys):
    path = tmp_path / "library.log"
    before = (sys.unraisablehook, threading.excepthook, sys.excepthook, warnings.showwarning)
    with LibraryLog(path):
        _RaisesInDel()  # collected at once: an exception nobody can raise (unraisable)
        thread = threading.Thread(target=_fail_in_a_thread)
        thread.start()
        thread.join()
        warnings.warn_explicit("coroutine 'save' was never awaited", RuntimeWarning,
                               "/site-packages/orbax/checkpoint/async.py", 10)
        logging.getLogger("absl").handle(logging.LogRecord(
            "absl", logging.ERROR, "/site-packages/orbax/checkpoint/manager.py", 5, "save failed", None, None))
        with pytest.warns(UserWarning, match="ours"):  # the project's own warnings stay visible
            warnings.warn("ours")
    err = capsys.readouterr().err
    text = path.read_text()
    for report in ("Event loop is closed", "TimeoutError: a background write timed out",
                   "was never awaited", "save failed"):
        assert report in text, report
    assert "Traceback" not in err and "never awaited" not in err
    assert err.strip() == f"purejaxvpg: note: libraries reported 4 error(s) from background threads; kept in {path}"
    # afterwards the warnings are the ones before, and a report outside library code reaches
    # the hooks that were there before
    assert warnings.showwarning is before[3]
    seen = []
    threading.excepthook = lambda args: seen.append(args.exc_type)  # noqa: E731 -- what "before" would do
    try:
        with LibraryLog(tmp_path / "second.log"):
            pass
        thread = threading.Thread(target=_fail_in_a_thread)
        thread.start()
        thread.join()
    finally:
        threading.excepthook = before[1]
    assert seen == [TimeoutError]


def _closed_loop_report():
    """What tensorstore's threads raise into orbax's closed loop: a frame in asyncio."""
    import asyncio

    loop = asyncio.new_event_loop()
    loop.close()
    loop.call_soon_threadsafe(print)


def test_library_threads_reporting_after_the_run_go_to_its_file(tmp_path, capsys):
    """A failed run exits while tensorstore's threads still report into orbax's closed event
    loop (sys.excepthook from their threads): those reports go to the run's file, not the
    terminal."""
    path = tmp_path / "library.log"
    with LibraryLog(path):
        pass
    thread = threading.Thread(target=lambda: sys.excepthook(*_caught(_closed_loop_report)))
    thread.start()
    thread.join()
    assert "Traceback" not in capsys.readouterr().err
    assert "Event loop is closed" in path.read_text()


def _caught(fn):
    try:
        fn()
    except Exception:
        return sys.exc_info()
    raise AssertionError("did not raise")


def test_nothing_reported_writes_nothing(tmp_path, capsys):
    with LibraryLog(tmp_path / "library.log"):
        pass
    assert not (tmp_path / "library.log").exists() and capsys.readouterr().err == ""


def _can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = "/tmp/purejaxvpg-mount-probe"
    os.makedirs(probe, exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", probe])
    return ok


@pytest.mark.skipif(not _can_mount(), reason="needs to mount a small tmpfs (root)")
def test_a_full_disk_shows_the_projects_lines_not_orbaxs_tracebacks(tmp_path):
    """The run directory on a 600 KiB filesystem: checkpoints fail from the second on. Before,
    stderr held ~3,900 lines (600 'Event loop is closed' tracebacks); now only the project's
    warnings, the note and the error, exit 1."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)], check=True)
    try:
        process = subprocess.run(
            [sys.executable, "-m", "purejaxvpg", "train", "--env-id", "CartPole-v1", "--total-steps", "16384",
             "--num-envs", "4", "--num-steps", "8", "--num-seeds", "2", "--log-every", "16", "--no-progress",
             "--checkpoint-every", "16", "--out", str(disk / "run")],
            capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run(["umount", str(disk)])
    lines = process.stderr.strip().splitlines()
    assert process.returncode == 1, process.stderr
    assert "Traceback" not in process.stderr
    assert all(line.startswith("purejaxvpg: ") for line in lines), lines
    assert any("could not write a checkpoint" in line for line in lines)
    assert any(line.startswith("purejaxvpg: note: libraries reported") for line in lines)
