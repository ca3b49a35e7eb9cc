"""JAX's persistent compilation cache, on by default for purejaxvpg's runs: a later run of
the same program (same config, seed count, devices, jax version) loads the compiled
executable from disk instead of compiling it again (2-core CPU, the README command:
compile 7-9 s the first time, about 1 s after; benchmarks/results/cpu-2core-compile-cache.json).

What keys an entry (JAX's own cache key, jax/_src/cache_key.py): the lowered program itself,
so every config field and environment parameter that changes the program is in it, plus
the jaxlib version, the backend and its devices, XLA flags and the compile options. The
directory adds the host CPU's model and instruction-set flags: a CPU executable compiled on
one machine must not be loaded on another that shares the home directory but lacks, say,
AVX-512.

Where, first match wins:
  1. the CLI's `--compile-cache DIR|off` (`setting` below);
  2. $PUREJAXVPG_COMPILE_CACHE: a directory, or "off";
  3. a directory set through JAX itself (jax_compilation_cache_dir, $JAX_COMPILATION_CACHE_DIR),
     left as it is;
  4. $XDG_CACHE_HOME/purejaxvpg/jax-cache (~/.cache/purejaxvpg/jax-cache).
The first run in a process decides (JAX opens its cache once per process). The cache is an
optimisation: a directory that cannot be created turns it off with a warning, never fails a
run. `bench` leaves it off unless asked: a benchmark times the compile, not a disk read.

Trust: JAX's cache is trusted code (an entry is an executable); keep it in a directory only
you can write, as the default is.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from pathlib import Path

import jax

ENV = "PUREJAXVPG_COMPILE_CACHE"
OFF = frozenset({"off", "none", "no", "false", "0"})
MAX_BYTES = 4 * 1024**3  # least-recently-used entries are evicted past this (JAX's LRU cache)

_state: dict = {"decided": False, "dir": None, "hits": 0, "misses": 0}


def parse(setting: str | os.PathLike | None) -> Path | None | bool:
    """A --compile-cache / $PUREJAXVPG_COMPILE_CACHE value: a Path, False for "off", None
    for unset."""
    if setting is None:
        return None
    text = str(setting).strip()
    if not text:
        raise ValueError(f"compile_cache: an empty directory name; give a directory or 'off' ({ENV})")
    return False if text.lower() in OFF else Path(text).expanduser()


def default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "purejaxvpg" / "jax-cache"


def host_tag() -> str:
    """The host CPU in a directory name: machine, model and instruction-set flags (Linux:
    /proc/cpuinfo), hashed. Executables for other CPUs then live in other directories."""
    text = platform.machine() + platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags", "Features", "CPU part")):
                text += line
                if line.startswith(("flags", "Features")):
                    break  # the first core's: all cores of one machine share them
    except OSError:
        pass
    return f"{platform.machine() or 'cpu'}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def enable(setting: str | os.PathLike | None = None) -> Path | None:
    """Turn the cache on for this process as the module docstring says, once (later calls
    return the first decision). Returns the directory in use, or None when off."""
    if _state["decided"]:
        return _state["dir"]
    _state["decided"] = True
    chosen = parse(setting)
    if chosen is None:
        chosen = parse(os.environ.get(ENV) or None)
    if chosen is False:
        return None
    own = jax.config.jax_compilation_cache_dir
    if chosen is None and own:  # the user's own JAX setting
        _state["dir"] = Path(own)
        _count_hits()
        return _state["dir"]
    directory = (chosen or default_root()) / host_tag()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        print(f"purejaxvpg: warning: compile cache off ({error}); set {ENV}=DIR to put it "
              "elsewhere, or off", file=sys.stderr)
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    # our programs' init compiles in under JAX's 1 s default; a second run should load it too
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if jax.config.jax_compilation_cache_max_size == -1:
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    _state["dir"] = directory
    _count_hits()
    return directory


def counts() -> tuple[int, int]:
    """(executables loaded from the persistent cache, compiled and written to it) in this
    process so far."""
    return _state["hits"], _state["misses"]


def _count_hits() -> None:
    def listen(event: str, **_) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            _state["hits"] += 1
        elif event == "/jax/compilation_cache/cache_misses":
            _state["misses"] += 1

    jax.monitoring.register_event_listener(listen)
