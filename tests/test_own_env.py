"""Your own environment: an object given to pjv.train, an id given to envs.register, and an
import path "module:factory" that a fresh process (`--resume`, `eval`) imports again;
environment parameters from a Config, TOML or --env-param, checked before compiling.

The environment (tests/own_env_fixture.py, PickArm) pays 1 per step for one arm of three
and is cut after max_steps_in_episode steps: the known answer is a greedy return (and an
episode length) of exactly max_steps_in_episode.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import forbid_compiling, interrupt_then_resume_and_evaluate
from own_env_fixture import PickArm, PickParams

import purejaxvpg as pjv
from purejaxvpg import envs
from purejaxvpg.envs import registry
from purejaxvpg.host import rundir
from purejaxvpg.tools import cli, flags
from purejaxvpg.tools.parser import build_parser

TESTS = Path(__file__).parent
SMALL = ["--num-envs", "4", "--num-steps", "16", "--total-steps", "2560", "--policy-lr", "0.02",
         "--eval-every", "0", "--num-seeds", "2", "--no-progress"]


def _config(**changes):
    return pjv.Config(env_id="PickArm", num_envs=4, num_steps=16, total_steps=4 * 16 * 40, policy_lr=0.02,
                      eval_every=0, **changes)


def test_train_an_environment_object_learns_the_best_arm_and_registers_nothing():
    params = PickParams(best_arm=0, max_steps_in_episode=6)
    result = pjv.train(_config(), num_seeds=2, env=PickArm(), env_params=params)
    assert np.all(result.metrics["episode_return"][:, -1] == 6.0)  # arm 0 at each of 6 steps
    assert np.all(result.metrics["episode_length"][:, -1] == 6.0)  # env_params reached it
    assert "PickArm" not in envs.registered()
    # its policy acts through the object: "PickArm" names the run and is built nowhere
    for seed in (0, 1):
        act = result.policy(seed)
        assert int(act(np.ones(2, np.float32))) == 0
        assert np.all(np.asarray(act(np.ones((5, 2), np.float32))) == 0)
    # make_train takes it too (traced, not compiled: the shapes of one seed's run)
    state, metrics, _ = jax.eval_shape(pjv.make_train(_config(), env=PickArm()), jax.random.key(0))
    assert metrics.episode_return.shape == (40,)


@pytest.fixture
def clean_registry():
    yield
    registry._USER.clear()


def test_register_builds_the_factory_and_refuses_a_taken_id(clean_registry):
    envs.register("pick-arm", PickArm)  # an env alone: its default_params are used
    env, params = envs.make("pick-arm", max_steps_in_episode=3)
    assert isinstance(env, PickArm) and params == PickParams(max_steps_in_episode=3)
    assert "pick-arm" in envs.registered()
    with pytest.raises(ValueError, match="^env_id: 'pick-arm' is already registered.*overwrite=True"):
        envs.register("pick-arm", PickArm)
    with pytest.raises(ValueError, match="^env_id: 'CartPole-v1' is already registered"):
        envs.register("CartPole-v1", PickArm)
    envs.register("pick-arm", lambda: (PickArm(), PickParams(best_arm=1)), overwrite=True)
    assert envs.make("pick-arm")[1].best_arm == 1
    pjv.Config(env_id="pick-arm").validate()


def test_a_cli_run_of_an_import_path_resumes_and_evaluates_in_a_fresh_process(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--env-id", "own_env_fixture:make_env", "--env-param", "max_steps_in_episode=5",
            "--checkpoint-every", "20", *SMALL, "--out", str(out)]
    assert cli.main(argv) == 0
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["config"]["env_id"] == "own_env_fixture:make_env"
    assert recorded["config"]["env_params"] == [["max_steps_in_episode", 5]]
    assert rundir.read_config(out)[0].env_params == (("max_steps_in_episode", 5),)
    whole = dict(np.load(out / "metrics.npz"))
    assert np.all(whole["episode_return"][:, -1] == 5.0)  # the best arm, 5 steps an episode
    assert np.all(whole["episode_length"][:, -1] == 5.0)  # --env-param reached the environment

    # interrupted after update 20: the newest checkpoint and the results gone
    done = interrupt_then_resume_and_evaluate(out, newest=40, pythonpath=str(TESTS), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr and "update 20 of 40" in done.stderr
    resumed = np.load(out / "metrics.npz")
    for name in ("episode_return", "episode_length", "policy_loss"):
        assert np.allclose(resumed[name], whole[name]), name  # as the uninterrupted run
    assert "greedy: median / mean length" in done.stdout and "5.0 / 5.0" in done.stdout

    # where the module does not import, eval and load_policy say so in one line, and what to pass
    bare = {**os.environ, "PYTHONPATH": ""}
    for argv in (["-m", "purejaxvpg", "eval", str(out)],
                 ["-c", f"import purejaxvpg as pjv\ntry:\n pjv.load_policy({str(out)!r})\n"
                        "except ValueError as e:\n print(e)"]):
        refused = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=bare, capture_output=True,
                                 text=True, timeout=300)
        text = (refused.stderr if argv[0] == "-m" else refused.stdout).strip()
        assert refused.returncode == (2 if argv[0] == "-m" else 0), refused.stderr[-2000:]
        assert len(text.splitlines()) == 1 and "Traceback" not in refused.stderr, text
        assert "cannot be rebuilt" in text and "own_env_fixture" in text
        assert ("PYTHONPATH" in text) and ("env=" in text)
    # given the object, the policy acts (its parameters say arm 2 is the best)
    act = pjv.load_policy(out, seed=1, env=PickArm(), env_params=PickParams(max_steps_in_episode=5))
    assert int(act(np.ones(2, np.float32))) == 2


def test_a_sweep_of_an_import_path_runs_in_a_fresh_process(tmp_path):
    """`purejaxvpg sweep` in a new interpreter imports the user's module itself (nothing registered)."""
    out = tmp_path / "sweep"
    argv = ["sweep", "--env-id", "own_env_fixture:make_env", "--env-param", "max_steps_in_episode=5",
            "--grid", "policy_lr=0.02,0.03", *[a for a in SMALL if a != "--no-progress"], "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "purejaxvpg", *argv], env=env, capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "sweep.json").read_text())
    assert record["config"]["env_id"] == "own_env_fixture:make_env"
    assert record["config"]["env_params"] == [["max_steps_in_episode", 5]]
    assert len(record["settings"]) == 2
    for setting in record["settings"]:  # both learning rates find the paying arm: 5 steps x 1
        assert setting["final_scores"] == [5.0, 5.0], setting


def _exit_and_error(argv, capsys, monkeypatch):
    """(exit code, stderr) of a CLI call that must be refused before compiling."""
    forbid_compiling(monkeypatch)
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own refusal of a malformed flag
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("env_id, message", [
    ("own_env_fixture:nope", "has no callable 'nope'"),
    ("no_such_module_xyz:make_env", "cannot import module 'no_such_module_xyz' .*ModuleNotFound.*PYTHONPATH"),
    ("own_env_fixture:broken_factory", "the factory raised RuntimeError: no simulator licence"),
    ("own_env_fixture:not_an_env", "must return an environment .* got int"),
])
def test_a_bad_import_path_is_refused_naming_the_id_before_compiling(env_id, message, capsys, monkeypatch):
    code, err = _exit_and_error(["train", "--env-id", env_id, *SMALL], capsys, monkeypatch)
    assert code == 2
    assert f"env_id: {env_id}" in err
    assert re.search(message, err), err


@pytest.mark.parametrize("param, message", [
    ("max_stepz=5", "env_params.max_stepz: own_env_fixture:make_env has no parameter.*allowed: best_arm"),
    ("max_steps_in_episode=many", "env_params.max_steps_in_episode: .* is a int.*got 'many'"),
    ("best_arm=1.5", "env_params.best_arm: .*got 1.5"),
    ("best_arm", "NAME=VALUE"),
])
def test_a_bad_env_param_is_refused_naming_the_field_before_compiling(param, message, capsys, monkeypatch):
    argv = ["train", "--env-id", "own_env_fixture:make_env", "--env-param", param, *SMALL]
    code, err = _exit_and_error(argv, capsys, monkeypatch)
    assert code == 2 and re.search(message, err), err


@pytest.mark.parametrize("env_id", ["CartPole-v1", "BernoulliBandit-misc", "own_env_fixture:make_env"])
@pytest.mark.parametrize("value", ["0", "-5", "8.5", "true", "1e9999", "1000000000000"])
def test_a_time_limit_that_ends_no_episode_is_refused_before_compiling(env_id, value, capsys, monkeypatch):
    """max_steps_in_episode means the same in every environment: a whole number of steps >= 1
    (BernoulliBandit-misc keeps its limit as a float: 8.5 passed its type check)."""
    argv = ["train", "--env-id", env_id, "--env-param", f"max_steps_in_episode={value}", *SMALL]
    code, err = _exit_and_error(argv, capsys, monkeypatch)
    assert code == 2 and err.startswith("purejaxvpg: error: env_params.max_steps_in_episode: "), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="^env_params.max_steps_in_episode: "):
        pjv.Config(env_id=env_id, env_params=(flags._parse_env_param(f"max_steps_in_episode={value}"),)).validate()


def test_valid_time_limits_are_accepted():
    for env_id, value in (("CartPole-v1", 1), ("BernoulliBandit-misc", 50.0), ("own_env_fixture:make_env", 7)):
        pjv.Config(env_id=env_id, env_params=(("max_steps_in_episode", value),)).validate()


def test_env_params_table_in_toml_and_flags_merge(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('env_id = "CartPole-v1"\n[env_params]\nmax_steps_in_episode = 50\ngravity = 9.0\n')
    args = build_parser().parse_args(["train", "--config", str(toml), "--env-param", "gravity=12.5"])
    config = flags.config_from_args(args).validate()
    assert dict(config.env_params) == {"max_steps_in_episode": 50, "gravity": 12.5}
    hash(config)  # frozen and hashable: the driver caches on it
    _, params = envs.make(config.env_id, **dict(config.env_params))
    assert params.max_steps_in_episode == 50 and float(params.gravity) == 12.5


def test_make_checks_an_environment_that_is_not_built_in(clean_registry):
    pytest.importorskip("purejaxvpg.envs.check")

    class WrongSpace(PickArm):  # says (3,), observes (2,)
        def observation_space(self, params):
            return type(super().observation_space(params))(1.0, 1.0, (3,), np.float32)

    envs.register("wrong-space", WrongSpace)
    with pytest.raises(ValueError, match="observation_space"):
        envs.make("wrong-space")
    with pytest.raises(ValueError, match="observation_space"):
        pjv.train(_config(), env=WrongSpace())  # an object given directly is checked too


@pytest.mark.parametrize("source, env_id, message", [
    ("raise RuntimeError('no licence server')\n", "broken_mod_rt:make", "raised RuntimeError: no licence server"),
    ("def make(:\n", "broken_mod_syntax:make", "raised SyntaxError: "),
    ("", ".relative_mod:make", "is not an import path of the form 'package.module:factory'"),
    ("", "pkg..mod:make", "is not an import path"),
])
def test_an_import_path_that_fails_is_one_line_naming_it(source, env_id, message, tmp_path, capsys, monkeypatch):
    """A user module that raises anything at import, or a malformed path: exit 2, one line
    naming env_id and the error, no traceback."""
    name = env_id.split(":")[0].lstrip(".")
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, err = _exit_and_error(["train", "--env-id", env_id, *SMALL], capsys, monkeypatch)
    assert code == 2 and err.startswith("purejaxvpg: error: env_id: "), err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_rescale_actions_on_an_unbounded_box_is_refused_before_compiling(monkeypatch):
    """Every seed would diverge: [-1, 1] mapped onto (-inf, inf) sends each action to inf."""
    import jax.numpy as jnp
    from gymnax.environments import spaces

    class Unbounded(PickArm):
        def action_space(self, params=None):
            return spaces.Box(-jnp.inf, jnp.inf, (1,), jnp.float32)

        def step_env(self, key, state, action, params):
            return super().step_env(key, state, jnp.int32(0), params)

    forbid_compiling(monkeypatch)
    with pytest.raises(ValueError, match=r"^rescale_actions: .*must be bounded.*Leave rescale_actions off"):
        pjv.train(_config(rescale_actions=True), num_seeds=1, env=Unbounded())
