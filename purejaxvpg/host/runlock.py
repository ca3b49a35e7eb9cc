"""Two processes never write one run directory: an exclusive lock on RUN_DIR/.purejaxvpg.lock,
held for a whole session by `train`, `train --resume`, `eval` and `merge` (on each run it
reads and the one it writes). The kernel releases it when the process dies, so a killed
run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from purejaxvpg.host.rundir import read_config

LOCK_NAME = ".purejaxvpg.lock"


class RunLock:
    """An exclusive lock (fcntl.flock) on RUN_DIR/.purejaxvpg.lock, held by one process
    for a whole session: a second `train` on the same --out, or a `--resume` or `eval` of
    a run still training, is refused. The kernel releases it when the process dies.

    create: make RUN_DIR (and its parents) first; `created` lists the directories made and
    `created_file` whether the lock file is new, so a refused or failed fresh run can leave
    nothing of its own behind (`remove_created`)."""

    def __init__(self, run_dir: Path, name: str = "out", create: bool = True):
        self.run_dir, self.created, self.created_file, self.handle = Path(run_dir), [], False, None
        try:
            if create:
                missing = [p for p in [self.run_dir.absolute(), *self.run_dir.absolute().parents]
                           if not p.exists()]
                self.run_dir.mkdir(parents=True, exist_ok=True)
                self.created = missing  # deepest first
                self.created_file = not (self.run_dir / LOCK_NAME).exists()
            self.handle = open(self.run_dir / LOCK_NAME, "a+")
        except OSError as error:
            self.remove_created()
            raise ValueError(f"{name}: cannot use {run_dir}: {error.strerror or error}.") from error
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "unknown"
            self.handle.close()
            self.handle = None
            raise ValueError(
                f"{name}: {run_dir} is in use by another purejaxvpg process (pid {holder}); "
                "wait for it to finish or pick another directory."
            ) from error
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"{os.getpid()}\n")
        self.handle.flush()

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None

    def remove_created(self) -> None:
        """Remove the lock file and the directories this lock created (a directory only if
        nothing else is in it): a refused or failed fresh run must not block its own --out,
        nor remove anything it did not make."""
        self.release()
        if self.created_file:
            (self.run_dir / LOCK_NAME).unlink(missing_ok=True)
        if not self.created:
            return
        try:
            (self.run_dir / "checkpoints").rmdir()  # an empty one, in a directory this run made
        except OSError:
            pass
        for directory in self.created:
            try:
                directory.rmdir()  # only if empty
            except OSError:
                break


class NoLock:
    """What the other processes of a distributed run hold: process 0 holds the RunLock."""

    def release(self) -> None: ...

    def remove_created(self) -> None: ...


def lock_existing(run_dir: Path, name: str):
    """The lock of an existing run directory. Locked before config.json is read (a run
    still compiling has none yet); a directory that never held a run is refused unlocked."""
    if not (Path(run_dir) / LOCK_NAME).is_file():
        read_config(run_dir)  # raises when it is no run directory, naming the problem
    return RunLock(run_dir, name=name, create=False)
