"""The user's path: the wheel, installed non-editable into a fresh virtual environment, and
every command run as its own process through the installed `purejaxvpg` console script, from
a directory outside the checkout that holds the user's own `envs/` package.

In-process tests hid an import circle that crashed `purejaxvpg eval` for every user and a
top-level `envs` package that broke every project with its own: these tests do what a user
does. The wheel and the venv are built once per test run (module fixture). The venv gets the
wheel alone (`--no-deps`) and sees this environment's site-packages for the dependencies
through a .pth line (site-packages added as a plain path: its .pth files, the editable
install's among them, are not run); PJV_USER_PATH_FULL_INSTALL=1 installs the dependencies
too, from the index, as `pip install` of the wheel does for a user.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

# whole-program runs in a dozen fresh processes (~2 min on 2 cores): with the learning
# checks in the slow set, which .ci/run runs after the default suite (python -m pytest -m slow)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ["--env-id", "CartPole-v1", "--num-envs", "4", "--num-steps", "32", "--total-steps", "4096",
          "--value-iters", "1"]  # 32 updates
TINY = [*CONFIG, "--no-progress"]  # one program for every train below
USER_ENVS = "MARKER = 'the user project envs'\n"


def _version() -> str:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """(run(argv, ...) in the fresh venv from the user's directory, that directory, the wheel)."""
    base = tmp_path_factory.mktemp("user-path")
    wheels, source = base / "wheels", base / "source"
    # a clean copy: setuptools reuses build/lib, where a deleted module would live on
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__", ".pytest_cache"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                            "-w", str(wheels), "-q"], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next(wheels.glob("purejaxvpg-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    full = os.environ.get("PJV_USER_PATH_FULL_INSTALL") == "1"
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                                *([] if full else ["--no-deps"]), str(wheel)],
                               capture_output=True, text=True, timeout=1800)
    assert installed.returncode == 0, installed.stderr[-3000:]
    if not full:  # this environment's packages, as plain paths after the venv's own
        outer = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
        (Path(purelib) / "zz_test_dependencies.pth").write_text("\n".join(outer) + "\n")
    home = base / "project"  # the user's own project: outside the checkout, with its own envs/
    (home / "envs").mkdir(parents=True)
    (home / "envs" / "__init__.py").write_text(USER_ENVS)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(venv),
               JAX_COMPILATION_CACHE_DIR=str(base / "jax-cache"),  # the same program compiles once
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", MPLBACKEND="Agg")

    def run(argv, cwd=home, timeout=600, script=False):
        command = [str(python), *argv] if script else [str(venv / "bin" / "purejaxvpg"), *argv]
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr[-3000:]}"
        return done

    return run, home, wheel, purelib


def test_the_wheel_holds_every_module_and_no_top_level_envs(user):
    _, _, wheel, purelib = user
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"purejaxvpg"}, tops
    expected = {f"purejaxvpg/{p.relative_to(ROOT / 'purejaxvpg').as_posix()}"
                for p in (ROOT / "purejaxvpg").rglob("*.py")}
    expected |= {f"purejaxvpg/envs/{p.relative_to(ROOT / 'envs').as_posix()}" for p in (ROOT / "envs").rglob("*.py")}
    assert expected <= set(names), sorted(expected - set(names))
    assert not (Path(purelib) / "envs").exists() and not (Path(purelib) / "purejaxvpg").is_symlink()


def test_version_is_the_package_metadata(user):
    run, home, _, _ = user
    assert run(["--version"]).stdout.strip() == f"purejaxvpg {_version()}"
    done = run(["-c", "import purejaxvpg, envs; print(purejaxvpg.__version__, purejaxvpg.__file__, envs.MARKER)"],
               script=True)
    version, where, marker = done.stdout.split(" ", 2)
    assert version == _version() and "site-packages" in where and str(ROOT) not in where
    assert marker.strip() == "the user project envs"


def test_train_resume_eval_from_the_installed_console_script(user):
    run, home, _, _ = user
    run(["train", *TINY, "--num-seeds", "2", "--checkpoint-every", "8", "--out", "run"])
    info = json.loads((home / "run" / "config.json").read_text())
    assert info["version"] == _version() and info["results"]["updates_done"] == 32
    whole = dict(np.load(home / "run" / "metrics.npz"))
    assert whole["episode_return"].shape == (2, 32)

    # interrupted after update 24: the newest checkpoint and the results gone; --resume ends as the whole run
    shutil.rmtree(home / "run" / "checkpoints" / "32")
    del info["results"]
    (home / "run" / "config.json").write_text(json.dumps(info))
    (home / "run" / "metrics.npz").unlink()
    done = run(["train", "--resume", "run", "--no-progress"])
    assert "update 24 of 32" in done.stderr
    resumed = np.load(home / "run" / "metrics.npz")
    np.testing.assert_allclose(resumed["episode_return"], whole["episode_return"], rtol=1e-5)

    # the run's config as TOML, read back in another process: the same fields as config.json
    (home / "run.toml").write_text(run(["config", "run"]).stdout)
    assert json.loads(run(["config", "run.toml", "--format", "json"]).stdout) == info["config"]

    done = run(["eval", "run", "--episodes", "2"])
    assert "greedy" in done.stdout
    record = json.loads((home / "run" / "eval.json").read_text())
    assert record["num_seeds"] == 2 and len(record["greedy"]["return_per_seed"]) == 2


def test_export_in_every_format_whose_library_is_installed(user):
    run, home, _, _ = user
    if not (home / "run" / "metrics.npz").exists():
        run(["train", *TINY, "--num-seeds", "2", "--out", "run"])
    run(["export", "run", "--format", "csv", "--metric", "episode_return", "--out", "run.csv"])
    lines = (home / "run.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 32  # a header, then each seed's 32 updates of episode_return
    run(["export", "run", "--format", "csv", "--out", "final.csv"])  # by default: the final greedy evaluation
    rows = (home / "final.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 and all(",31,4096,eval_return_greedy," in row for row in rows)
    run(["export", "vpg=run", "--format", "rliable", "--out", "scores.npz"])
    assert np.load(home / "scores.npz")["vpg"].shape == (2, 1)  # [seeds, envs]
    done = run(["compare", "a=run", "--out", "compared"])  # matplotlib on the Agg canvas, no display
    assert "a: iqm [95% CI]" in done.stdout
    assert {p.name for p in (home / "compared").iterdir()} == {"compare.json", "performance_profile.png",
                                                              "sample_efficiency.png"}
    run(["plot", "a=run", "--smooth", "3", "--out", "curves.pdf"])
    assert (home / "curves.pdf").read_bytes()[:5] == b"%PDF-"
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        return
    run(["export", "run", "--format", "parquet", "--out", "run.parquet"])
    assert (home / "run.parquet").stat().st_size > 0


def test_seed_ranges_and_merge(user):
    run, home, _, _ = user
    for start in (0, 2):
        run(["train", *TINY, "--num-seeds", "2", "--seed-start", str(start), "--out", f"part{start}"])
    run(["merge", "part2", "part0", "--out", "merged"])
    merged = np.load(home / "merged" / "metrics.npz")
    assert merged["episode_return"].shape == (4, 32) and list(merged["seed"]) == [0, 1, 2, 3]
    for start in (0, 2):
        part = np.load(home / f"part{start}" / "metrics.npz")
        np.testing.assert_array_equal(merged["episode_return"][start:start + 2], part["episode_return"])
    assert json.loads((home / "merged" / "config.json").read_text())["run"]["num_seeds"] == 4
    assert any((home / "merged" / "checkpoints").iterdir())


def test_sweep_and_bench(user):
    run, home, _, _ = user
    run(["sweep", *CONFIG, "--grid", "policy_lr=1e-3,3e-3", "--num-seeds", "2", "--out", "sweep"])
    record = json.loads((home / "sweep" / "sweep.json").read_text())
    assert len((home / "sweep" / "sweep.csv").read_text().splitlines()) == 1 + 2
    assert "runs" in record or record  # written, strict JSON
    run(["bench", "--scenario", "smoke", "--num-seeds", "2", "--out", "bench"])
    (path,) = (home / "bench").glob("*-smoke-throughput.json")
    points = json.loads(path.read_text())["runs"][0]["points"]
    assert [p["num_seeds"] for p in points] == [2] and points[0]["run_seconds"] > 0


def test_a_user_script_trains_loads_a_policy_and_acts_in_gymnasium(user):
    """From the user's project, whose own `envs` package stays theirs."""
    run, home, _, _ = user
    pytest.importorskip("gymnasium")
    if not (home / "run" / "checkpoints").exists():
        run(["train", *TINY, "--num-seeds", "2", "--out", "run"])
    (home / "play.py").write_text(
        "import envs\n"
        "import gymnasium\n"
        "import purejaxvpg as pjv\n"
        "config = pjv.Config(env_id='CartPole-v1', num_envs=4, num_steps=32, total_steps=4096)\n"
        "result = pjv.train(config, num_seeds=2)\n"
        "assert result.metrics['episode_return'].shape == (2, 32)\n"
        "act = pjv.load_policy('run', seed=1)\n"
        "env = gymnasium.make('CartPole-v1')\n"
        "obs, _ = env.reset(seed=0)\n"
        "total, done = 0.0, False\n"
        "while not done:\n"
        "    action = int(act(obs))\n"
        "    assert action in (0, 1)\n"
        "    obs, reward, terminated, truncated, _ = env.step(action)\n"
        "    total, done = total + reward, terminated or truncated\n"
        "print(envs.MARKER, total)\n"
    )
    done = run(["play.py"], script=True)
    marker, _, total = done.stdout.strip().rpartition(" ")
    assert marker == "the user project envs" and float(total) >= 1
