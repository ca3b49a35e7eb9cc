"""Optional libraries stay unimported and silent until one of their environments is built.

The checks run in a fresh interpreter (this test process may have imported them already),
one interpreter for all of them: starting one costs seconds.
"""

import importlib.util
import subprocess
import sys

from purejaxvpg import envs

SCRIPT = """
import sys
from purejaxvpg import envs
import purejaxvpg
from purejaxvpg.tools import cli

OPTIONAL = ("jumanji", "craftax", "xminigrid", "mujoco_playground", "mujoco", "brax", "warp")
ids = envs.registered()
imported = sorted({m.split(".")[0] for m in sys.modules} & set(OPTIONAL))
assert not imported, f"listing ids imported {imported}"
try:
    cli.main(["--help"])
except SystemExit:
    pass
if "playground/CheetahRun" in ids:  # its model makes MuJoCo warn (deprecated settotalmass)
    for stream in (sys.stdout, sys.stderr):
        print("--playground--", file=stream, flush=True)
    envs.make("playground/CheetahRun")
    for stream in (sys.stdout, sys.stderr):
        print("--playground built--", file=stream, flush=True)
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
    for stream in ("stdout", "stderr"):  # building a playground id prints nothing, on either stream
        text = getattr(done, stream)
        if "--playground--" in text:
            before, rest = text.split("--playground--\n")
            between, after = rest.split("--playground built--\n")
            assert between == "", (stream, between)
            setattr(done, stream, before + after)
    assert done.stdout.startswith("usage: "), done.stdout[:200]  # nothing printed before the CLI's own output
    assert "Failed to import" not in done.stdout + done.stderr and "warp:" not in done.stdout
    tail = done.stdout.splitlines()[-2:]
    before_build = done.stderr.split("--build--")[0]
    assert before_build == "", before_build
    if importlib.util.find_spec("brax") is None:
        assert tail[-1] == f"ids: {len(envs.registered())}"
    else:  # after --build--, stderr may hold brax's own "unmaintained" warning, printed when it builds
        assert tail[0] == f"ids: {len(envs.registered())}" and tail[1].startswith("warp missing: ")
