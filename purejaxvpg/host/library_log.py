"""What libraries report from their background threads goes to RUN_DIR/library.log.

orbax writes checkpoints in background threads. When a write fails (a full disk, a
directory turned read-only), each of those threads and each of tensorstore's callbacks into
an event loop orbax already closed reports on its own: about 600 `RuntimeError: Event loop
is closed` tracebacks on stderr for one 2-seed run of 512 updates on a full disk, with
`TimeoutError` tracebacks, "coroutine was never awaited" warnings and orbax's ERROR logs.
The project itself reports each failure once, in one line (`Checkpoints`). While a
`LibraryLog` is installed, what Python reports from places no caller can catch goes to
the file instead of the terminal:

- exceptions nobody could raise (`sys.unraisablehook`: tensorstore's callbacks),
- uncaught exceptions of threads other than the main one (`threading.excepthook`, and
  `sys.excepthook` called from a non-main thread),
- warnings issued inside library code (`warnings.showwarning`),
- orbax's ERROR logs (the `absl` logger).

The file is created only when there is something to keep. On the way out, one line on
stderr says how many reports it holds (or, if it could not be written, that they were
dropped). The main thread's own exceptions are untouched: a bug still shows its traceback.

Library threads outlive the run: tensorstore's callbacks into orbax's closed event loop go
on reporting (through `sys.excepthook` from their threads) while a failed run exits. After
the first LibraryLog leaves, `_Afterwards` keeps routing reports raised in library code
(a frame in one of LIBRARIES) to the latest run's file for the rest of the process; every
other report reaches the hooks that were there before.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import traceback
import warnings
from pathlib import Path

LOG_NAME = "library.log"  # in the run directory (process 0's; the others add their index)
LIBRARIES = ("orbax", "tensorstore", "asyncio", "etils", "concurrent")  # whose warnings are routed


class LibraryLog:
    """While installed: the reports listed in the module's docstring are appended to `path`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.count, self.kept, self.error, self.lock = 0, 0, None, threading.Lock()

    # --- the file ----------------------------------------------------------------------

    def write(self, kind: str, text: str) -> None:
        with self.lock:
            self.count += 1
            if self.error is not None:
                return
            try:
                with open(self.path, "a") as file:
                    file.write(f"--- {kind} (thread {threading.current_thread().name})\n{text.rstrip()}\n")
                self.kept += 1
            except OSError as error:
                self.error = error.strerror or str(error)

    # --- the hooks ---------------------------------------------------------------------

    def __enter__(self) -> LibraryLog:
        self.previous = (sys.unraisablehook, threading.excepthook, sys.excepthook, warnings.showwarning)
        sys.unraisablehook = self._unraisable
        threading.excepthook = self._thread_exception
        sys.excepthook = self._excepthook
        warnings.showwarning = self._warning
        self.filter = _Route(self)
        logging.getLogger("absl").addFilter(self.filter)
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:  # what the failed writes left behind reports now, while routed;
            gc.collect()  # not on the way out of an error: a lost distributed peer can hang it
        logging.getLogger("absl").removeFilter(self.filter)
        sys.unraisablehook, threading.excepthook, sys.excepthook, warnings.showwarning = self.previous
        _Afterwards.route_to(self)
        if not self.count:
            return
        where = f"kept in {self.path}" if self.error is None else (
            f"{self.kept} kept in {self.path}, the rest dropped ({self.error})" if self.kept
            else f"dropped: {self.path} could not be written ({self.error})")
        print(f"purejaxvpg: note: libraries reported {self.count} error(s) from background threads; {where}",
              file=sys.stderr)

    def _unraisable(self, unraisable) -> None:
        text = "".join(traceback.format_exception(unraisable.exc_type, unraisable.exc_value,
                                                  unraisable.exc_traceback))
        where = f"{unraisable.err_msg or 'Exception ignored in'}: {unraisable.object!r}"
        self.write("unraisable", f"{where}\n{text}")

    def _thread_exception(self, args) -> None:
        if args.exc_type is SystemExit:
            return
        self.write("thread", "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)))

    def _excepthook(self, exc_type, exc_value, exc_traceback) -> None:
        if threading.current_thread() is threading.main_thread():
            return self.previous[2](exc_type, exc_value, exc_traceback)
        self.write("thread", "".join(traceback.format_exception(exc_type, exc_value, exc_traceback)))

    def _warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        if "was never awaited" in str(message) or any(
            f"/{name}/" in filename or filename.endswith(f"/{name}.py") for name in LIBRARIES
        ):
            return self.write("warning", warnings.formatwarning(message, category, filename, lineno, line))
        return self.previous[3](message, category, filename, lineno, file, line)


def is_orbax_error(record: logging.LogRecord) -> bool:
    """One of orbax's own ERROR logs (one per background thread, with a traceback, for a
    damaged file or a full disk), which the project reports once, by name, itself."""
    return record.levelno >= logging.ERROR and "orbax" in record.pathname


class _Route(logging.Filter):
    """orbax's ERROR logs (one per background thread, with a traceback) into the file."""

    def __init__(self, log: LibraryLog):
        super().__init__()
        self.log = log

    def filter(self, record: logging.LogRecord) -> bool:
        if is_orbax_error(record):
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self.log.write("orbax log", text)
            return False
        return True


def _from_library(tb) -> bool:
    """Whether a traceback runs through one of LIBRARIES' files."""
    for frame, _ in traceback.walk_tb(tb):
        name = frame.f_code.co_filename
        if any(f"/{library}/" in name for library in LIBRARIES):
            return True
    return False


class _Afterwards:
    """Installed once per process, at the first LibraryLog's exit, around the hooks there were:
    a report from library code goes to the latest LibraryLog's file (quietly: its note is
    printed), any other report to those hooks."""

    log: LibraryLog | None = None

    @classmethod
    def route_to(cls, log: LibraryLog) -> None:
        if cls.log is None:
            before = (sys.unraisablehook, threading.excepthook, sys.excepthook)

            def unraisable(report) -> None:
                if not _from_library(report.exc_traceback):
                    return before[0](report)
                cls.log._unraisable(report)

            def thread_exception(args) -> None:
                if not _from_library(args.exc_traceback):
                    return before[1](args)
                cls.log._thread_exception(args)

            def excepthook(exc_type, exc_value, exc_traceback) -> None:
                if threading.current_thread() is threading.main_thread() or not _from_library(exc_traceback):
                    return before[2](exc_type, exc_value, exc_traceback)
                cls.log.write("thread", "".join(traceback.format_exception(exc_type, exc_value, exc_traceback)))

            sys.unraisablehook, threading.excepthook, sys.excepthook = unraisable, thread_exception, excepthook
        cls.log = log
