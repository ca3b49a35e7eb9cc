"""Optional libraries (and gymnax) stay unimported and silent until one of their environments is built.

The checks run in a fresh interpreter (this test process may have imported them already),
one interpreter for all of them: starting one costs seconds.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


# gymnax imports seaborn, scipy and pandas (seconds): only a gymnax id may import it. The last
# step, building CartPole-v1, is the control: it must import gymnax, or the checks above prove nothing.
GYMNAX_SCRIPT = """
import json, sys
seen = {}
import purejaxvpg as pjv
seen["import purejaxvpg"] = "gymnax" in sys.modules
for env_id in ("own_env_plain:make_env", "Chain-known"):
    pjv.train(pjv.Config(env_id=env_id, num_envs=2, num_steps=4, total_steps=8), num_seeds=1)
    seen["train " + env_id] = "gymnax" in sys.modules
from purejaxvpg import envs
envs.make("CartPole-v1")
seen["make CartPole-v1"] = "gymnax" in sys.modules
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def gymnax_seen(tmp_path_factory):
    """{step: whether gymnax was imported after it}, from one fresh interpreter."""
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", GYMNAX_SCRIPT], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path_factory.mktemp("lazy"), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_and_training_an_own_or_known_environment_do_not_import_gymnax(gymnax_seen):
    assert gymnax_seen["import purejaxvpg"] is False
    assert gymnax_seen["train own_env_plain:make_env"] is False
    assert gymnax_seen["train Chain-known"] is False


def test_building_a_gymnax_id_imports_gymnax(gymnax_seen):
    assert gymnax_seen["make CartPole-v1"] is True
