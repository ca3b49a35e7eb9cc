"""Optional libraries stay unimported and silent until one of their environments is built.

The checks run in a fresh interpreter (this test process may have imported them already),
one interpreter for all of them: starting one costs seconds.
"""

import importlib.util
import subprocess
import sys

import envs

SCRIPT = """
import sys
import envs
import purejaxvpg
from purejaxvpg.tools import cli

ids = envs.registered()
assert not [m for m in sys.modules if m.split(".")[0] in ("brax", "mujoco")], "listing ids imported brax"
try:
    cli.main(["--help"])
except SystemExit:
    pass
print("ids:", len(ids))
if "brax/inverted_pendulum" in ids:
    sys.stdout.flush()
    print("--build--", file=sys.stderr, flush=True)
    env, params = envs.make("brax/inverted_pendulum")
    warp = sys.modules.get("mujoco.mjx.warp")
    # MJX prints its two warp lines iff warp is missing: then the adapter must have dropped them
    print("warp missing:", warp is not None and not warp.WARP_INSTALLED)
"""


def test_import_list_ids_cli_help_and_building_brax_print_nothing_from_optional_libraries():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: "), done.stdout[:200]  # nothing printed before the CLI's own output
    assert "Failed to import" not in done.stdout + done.stderr and "warp:" not in done.stdout
    tail = done.stdout.splitlines()[-2:]
    before_build = done.stderr.split("--build--")[0]
    assert before_build == "", before_build
    if importlib.util.find_spec("brax") is None:
        assert tail[-1] == f"ids: {len(envs.registered())}"
    else:  # after --build--, stderr may hold brax's own "unmaintained" warning, printed when it builds
        assert tail[0] == f"ids: {len(envs.registered())}" and tail[1].startswith("warp missing: ")
