"""What code computed a result: the package version, jax versions, a digest of the source
and the git commit. Chunks are reused (chunks.py), runs merged (tools/merge.py) and
config.json written (rundir.py) with it; it sits below all three so none imports another
for it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import subprocess
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # purejaxvpg/


def source_roots() -> tuple[Path, ...]:
    """The folders whose source decides the numbers: purejaxvpg and purejaxvpg.envs (the
    repository's top-level envs/ folder in a checkout, purejaxvpg/envs/ in a wheel)."""
    spec = importlib.util.find_spec("purejaxvpg.envs")
    return (_PACKAGE, Path(next(iter(spec.submodule_search_locations))).resolve())


def source_digest(roots=None) -> str:
    """sha256 over every .py file under `roots` (default: source_roots(); relative path and
    bytes), in sorted order: any edit to the code changes it, committed or not. The same
    source gives the same digest installed from a wheel or from a checkout."""
    roots = [Path(root).resolve() for root in (source_roots() if roots is None else roots)]
    digest = hashlib.sha256()
    for root in roots:
        nested = [other for other in roots if other != root and other.is_relative_to(root)]
        for path in sorted(root.rglob("*.py")):
            if any(path.is_relative_to(other) for other in nested):
                continue  # a wheel's purejaxvpg/envs/: counted once, under its own root
            digest.update(f"{root.name}/{path.relative_to(root).as_posix()}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def git_commit() -> str | None:
    """HEAD of the repository this package runs from (+ "-dirty" with local changes), or None
    (an installed wheel)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_PACKAGE, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        tracked = subprocess.run(  # a wheel installed inside someone's repository is not its code
            ["git", "ls-files", "--error-unmatch", "__init__.py"],
            cwd=_PACKAGE, capture_output=True, text=True, timeout=10,
        )
        if tracked.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_PACKAGE, capture_output=True, text=True, timeout=10,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def code_version() -> dict:
    """What computed a result. All but `git_commit` must match for chunks to be reused or
    runs merged (the commit is informative: a commit that changes no code keeps the digest).
    Read once per process: the code a process runs is what it imported, so a source file
    edited while a long run trains does not make its later chunks "other code"."""
    return dict(_code_version())


@functools.lru_cache(maxsize=1)
def _code_version() -> dict:
    versions = {}
    for name in ("purejaxvpg", "jax", "jaxlib"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {**versions, "source_sha256": source_digest(), "git_commit": git_commit()}


def same_code(saved: dict | None, now: dict) -> bool:
    """Whether a recorded code version (`code_version()`) is `now`'s: everything but the
    git commit, which is informative only."""
    keys = [k for k in now if k != "git_commit"]
    return isinstance(saved, dict) and all(saved.get(k) == now[k] for k in keys)
