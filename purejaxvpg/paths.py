"""Where a command may write its output, checked before any work.

One rule for every `--out` that is a folder (sweep, bench) or a file in one (export): the
folder must not be, or lie under, a file; it is made (with its missing parents) as the
write would make it, and a file must be creatable in it. A refusal is one ValueError naming
the flag, and removes the folders the check made.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def not_under_a_file(path: str | Path, name: str = "out", target: str | Path | None = None) -> None:
    """ValueError naming `name` when the folder `path` is a file or lies under one (the
    message names `target`, a file to be written in it, when given). Writes nothing."""
    path = Path(path)
    shown = path if target is None else Path(target)
    for place in (path, *path.parents):
        if place.exists() and not place.is_dir():
            where = "is a file" if place == shown else f"lies under the file {place}"
            raise ValueError(f"{name}: {shown} {where}; pass a path in a directory.")


def writable_folder(folder: str | Path, name: str = "out", target: str | Path | None = None) -> Path:
    """`folder`, made and checked writable; ValueError naming `name` otherwise. `target`:
    the path the user gave when it is a file inside `folder` (the messages name it)."""
    folder = Path(folder)
    not_under_a_file(folder, name, target)
    missing = [p for p in (folder.absolute(), *folder.absolute().parents) if not p.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        for made in missing:
            try:
                made.rmdir()
            except OSError:
                break
        raise ValueError(
            f"{name}: cannot write into {folder} ({error.strerror or error}); pass a writable directory."
        ) from None
    return folder
