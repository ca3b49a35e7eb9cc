"""No import circle anywhere in the package: every module imports on its own, first, in a
process that has imported nothing of purejaxvpg, and all of them import in alphabetical and
in reverse order, each order in a fresh interpreter.

In-process tests cannot see a circle: once a test has imported the driver, a module that
would have crashed on first import (`purejaxvpg eval` in a new shell did) imports fine.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

# Each module first, in a child forked from a process that holds only third-party
# libraries (not jax's backend: gymnax starts it on import, so it is left to the child).
# A fresh interpreter per module would cost ~4 s each; a fork costs what the module adds.
EACH_FIRST = r"""
import importlib, json, os, sys, traceback
for lib in ("numpy", "scipy.stats", "pandas", "matplotlib.pyplot", "seaborn", "jax", "jax.numpy", "flax.linen",
            "flax.struct", "optax", "chex", "orbax.checkpoint", "rich.progress"):
    try:
        importlib.import_module(lib)
    except ImportError:
        pass
from jax._src import xla_bridge
assert not xla_bridge._backends, "a preloaded library started jax's backend: forking would be unsafe"
assert not [m for m in sys.modules if m.split(".")[0] == "purejaxvpg"], "purejaxvpg imported before the fork"
failures = {}
for name in json.loads(sys.argv[1]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            message = ""
        except BaseException:
            message = traceback.format_exc()[-3000:]
        os.write(write, message.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    if message or status:
        failures[name] = message or f"child exited with status {status}"
print(json.dumps(failures))
"""

ALL_IN_ORDER = r"""
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
print("ok")
"""


def package_modules() -> list[str]:
    """Every module of the installed package (purejaxvpg.envs wherever it lies: the
    checkout's top-level envs/ or a wheel's purejaxvpg/envs/), found on disk, none imported;
    __main__ left out (importing it runs the command line)."""
    names = set()
    for package in ("purejaxvpg", "purejaxvpg.envs"):
        spec = importlib.util.find_spec(package)
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[0] == "envs" and package == "purejaxvpg":
                continue  # a wheel's purejaxvpg/envs/: found under its own name
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[-1:] != ("__main__",):
                names.add(".".join((package, *parts)))
    return sorted(names)


def _run(script: str, modules: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, json.dumps(modules)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_the_module_list_is_the_package():
    modules = package_modules()
    # a module moved or renamed must not silently drop out of the checks below
    for name in ("purejaxvpg.host.policy", "purejaxvpg.host.driver", "purejaxvpg.tools.cli",
                 "purejaxvpg.envs.registry", "purejaxvpg.algo.program", "purejaxvpg.tools.export"):
        assert name in modules
    assert not [m for m in modules if m == "envs" or m.startswith("envs.")]
    assert len(modules) >= 50


def test_every_module_imports_first_in_a_fresh_process(tmp_path):
    done = _run(EACH_FIRST, package_modules(), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    assert not failures, "\n\n".join(f"{name}:\n{text}" for name, text in failures.items())


def test_all_modules_import_in_alphabetical_and_reverse_order(tmp_path):
    modules = package_modules()
    for order in (modules, modules[::-1]):
        done = _run(ALL_IN_ORDER, order, tmp_path)
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_load_policy_attribute_cold(tmp_path):
    """The command the issue reproduced the eval crash with, from outside the checkout."""
    done = subprocess.run([sys.executable, "-c", "import purejaxvpg as pjv; pjv.load_policy; pjv.train"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, read from the source (every import
    statement, deferred ones inside functions too; `if TYPE_CHECKING:` blocks left out):
    a circle closed only by a deferred import is still a circle, one call away from a crash."""
    import ast

    modules = package_modules()
    known = set(modules)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name in modules:
        spec = importlib.util.find_spec(name)
        tree = ast.parse(Path(spec.origin).read_text())
        package = name if spec.submodule_search_locations else name.rpartition(".")[0]
        skip = {id(node) for node in ast.walk(tree) if isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test) for node in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, up level - 1
                    parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*parent, *([base] if base else [])])
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                           for alias in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in known and t != name}
    return graph


def test_no_import_circle_in_the_source():
    graph = import_graph()
    circles, state = [], {}

    def visit(node, path):  # depth-first; a back edge closes a circle
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


# The package's floors, lowest first: a module imports only from its own floor or below.
# Data flows envs -> algo (the pure program) -> host (runs it: files, devices, sessions) ->
# tools (the commands); config (which validates env ids against envs) sits between envs
# and algo; report (numbers and plots from arrays) under host, which writes its plots.
FLOORS = [
    ("base", ("purejaxvpg.version", "purejaxvpg.paths", "purejaxvpg.presets", "purejaxvpg.checks")),
    ("envs", ("purejaxvpg.envs",)),
    ("config", ("purejaxvpg.config",)),
    ("algo", ("purejaxvpg.algo",)),
    ("report", ("purejaxvpg.report",)),
    ("host", ("purejaxvpg.host",)),
    ("tools", ("purejaxvpg.tools", "purejaxvpg.__main__")),
    ("api", ("purejaxvpg",)),  # the package's front door re-exports from every floor
]


def floor_of(module: str) -> int:
    """Index in FLOORS of the most specific prefix naming `module`."""
    best = max((len(prefix), i) for i, (_, prefixes) in enumerate(FLOORS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + "."))
    return best[1]


def test_no_module_imports_from_a_floor_above_its_own():
    graph = import_graph()
    assert {floor_of(m) for m in graph} == set(range(len(FLOORS)))  # every floor is populated
    up = sorted(f"{a} ({FLOORS[floor_of(a)][0]}) -> {b} ({FLOORS[floor_of(b)][0]})"
                for a, targets in graph.items() for b in targets if floor_of(b) > floor_of(a))
    assert not up, "imports that climb a floor:\n" + "\n".join(up)
