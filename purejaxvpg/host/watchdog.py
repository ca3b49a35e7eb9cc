"""A signal that cannot reach Python still stops the process, within a stated time.

Python runs a signal handler only between bytecodes of the main thread. While that thread
waits inside a compiled XLA call (a long block of updates, an evaluation of very long
episodes, a compile), Ctrl-C and SIGTERM are noted and nothing happens until the call
returns. The C-level handler still writes the signal's number to the wakeup fd
(`signal.set_wakeup_fd`) at once, so a thread reading that fd learns of it on time: it gives
the process `seconds` to stop by itself (a session finishes and checkpoints its block, the
CLI exits 130 / 143), then ends it with `os._exit(128 + signum)` and one line on stderr.
A second signal shortens the wait to one second. A run stopped this way resumes from its
last checkpoint, as after a SIGKILL; before exiting, the thread calls what `tidy_on_stop`
registered (a fresh run with no checkpoint removes what it created).

Only signals Python handles reach the fd, so one the process was told to ignore (a shell's
background job ignores SIGINT) stays ignored. `Interrupted` (what a SIGINT / SIGTERM raises)
lives here too, imported before any handler runs: a handler that imported it could run in
the middle of that very import.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import os
import select
import signal
import socket
import sys
import threading
import time

SECONDS_VARIABLE = "PUREJAXVPG_STOP_SECONDS"
DEFAULT_SECONDS = 20.0  # below Slurm's default KillWait (30 s) between SIGTERM and SIGKILL
SECOND_SIGNAL_SECONDS = 1.0
WATCHED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A session stopped by SIGINT or SIGTERM. updates_done: the updates finished (and
    checkpointed, when the session had a run_dir); None if it stopped before training."""

    def __init__(self, signum: int, updates_done: int | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.updates_done = signum, updates_done

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


# what a forced stop does before it ends the process (`tidy_on_stop`): a fresh run removes
# what it created when it has no checkpoint, so the same command runs again
_TIDY: list = []


@contextlib.contextmanager
def tidy_on_stop(tidy):
    """While it lasts, a forced stop (`_stop`) calls `tidy()` first (errors ignored): the
    main thread is inside a compiled call then and touches no file."""
    _TIDY.append(tidy)
    try:
        yield
    finally:
        _TIDY.remove(tidy)


# signals this process sent itself again (`interrupt`): not a user's second signal
_REDELIVERED: collections.Counter = collections.Counter()
REDELIVER_SECONDS = 0.05


def interrupt(signum: int, frame) -> None:
    """A signal handler that raises Interrupted(signum), where the raise can reach the code
    that runs and leaves nothing half made. Python may run a handler inside a gc callback
    (jax registers one) or a __del__, where an exception is printed as 'Exception ignored'
    and dropped (the signal lost, the command runs on), or inside an import, which it would
    leave half done (a later `partially initialized module` traceback). There it raises
    nothing and sends the signal again REDELIVER_SECONDS later."""
    if _not_here(frame):
        _REDELIVERED[signum] += 1
        threading.Timer(REDELIVER_SECONDS, os.kill, (os.getpid(), signum)).start()
        return
    raise Interrupted(signum)


def _not_here(frame) -> bool:
    """Whether `frame` runs inside a gc callback or a __del__ (an exception there is
    dropped) or inside an import (importlib's frames: it would be left half done)."""
    callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        code = frame.f_code
        if code in callbacks or code.co_name == "__del__" or code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def stop_seconds() -> float:
    """The grace from $PUREJAXVPG_STOP_SECONDS (a positive number), else DEFAULT_SECONDS."""
    text = os.environ.get(SECONDS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{SECONDS_VARIABLE}: must be a positive number of seconds, got {text!r}.")
    return seconds


class Watchdog:
    """While installed (main thread only; elsewhere it does nothing): a SIGINT / SIGTERM the
    process has not acted on within `seconds` ends it."""

    def __init__(self, seconds: float | None = None):
        self.seconds = stop_seconds() if seconds is None else seconds
        self.thread = None

    def __enter__(self) -> Watchdog:
        if threading.current_thread() is not threading.main_thread():
            return self
        self.read, self.write = socket.socketpair()
        self.read.setblocking(False)
        self.write.setblocking(False)
        self.closing = False
        self.previous_fd = signal.set_wakeup_fd(self.write.fileno(), warn_on_full_buffer=False)
        self.thread = threading.Thread(target=self._watch, name="purejaxvpg-watchdog", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.thread is None:
            return
        self.closing = True
        signal.set_wakeup_fd(self.previous_fd)
        self.write.close()  # wakes the thread: its end reads EOF
        self.thread.join(timeout=5)
        self.read.close()
        self.thread = None

    def _watch(self) -> None:
        first, since, deadline = None, 0.0, None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.read], [], [], timeout)
            if self.closing:
                return
            if not ready:  # the deadline passed and the process is still here
                _stop(first, time.monotonic() - since)
            try:
                data = self.read.recv(64)
            except BlockingIOError:
                continue
            if not data:  # closed
                return
            for signum in data:
                if signum not in WATCHED:
                    continue
                if _REDELIVERED[signum] > 0:  # the same signal, sent again by `interrupt`
                    _REDELIVERED[signum] -= 1
                    continue
                now = time.monotonic()
                if first is None:
                    first, since, deadline = signum, now, now + self.seconds
                else:
                    deadline = min(deadline, now + SECOND_SIGNAL_SECONDS)


def _stop(signum: int, waited: float) -> None:
    """End the process now: one line (written straight to fd 2, whatever the main thread
    holds), the terminal's cursor back, exit 128 + signum."""
    name = signal.Signals(signum).name
    line = (f"\npurejaxvpg: {name}: still inside a compiled call {waited:.0f} s after the signal; stopping "
            f"now (exit {128 + signum}). A `train` run keeps its last checkpoint (`purejaxvpg train --resume "
            "RUN_DIR` continues it; the running block's work is lost); a fresh one that had written none "
            "leaves nothing behind, so the same command starts again.\n")
    for tidy in list(_TIDY):
        try:
            tidy()
        except Exception:
            pass
    try:
        if sys.stderr is not None and sys.stderr.isatty():
            line = "\x1b[?25h" + line  # a progress bar may have hidden the cursor
        os.write(2, line.encode())
    except (OSError, ValueError):
        pass
    os._exit(128 + signum)


class FinishTheBlock:
    """While installed (main thread only): the first SIGINT/SIGTERM is noted and the
    running block finishes, so it can be checkpointed; a second one stops at once.
    A signal the process was told to ignore (a shell's background job ignores SIGINT)
    stays ignored. Not `enabled` (nothing to checkpoint: purejaxvpg.train): the
    process's own handlers stay, and `received` stays None."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    def __enter__(self):
        self.received, self.previous = None, {}
        if self.enabled and threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS
                             if signal.getsignal(s) is not signal.SIG_IGN}
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            return interrupt(signum, frame)  # raises Interrupted where it can reach
        self.received = signum
        print(f"\npurejaxvpg: {signal.Signals(signum).name}: stopping after this block "
              "(and checkpointing it); send it again to stop at once", file=sys.stderr)

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
