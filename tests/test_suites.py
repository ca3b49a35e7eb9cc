"""purejaxvpg.envs.suites: the optional suites are listed without being imported, a missing extra is named
with its pip command, an unlisted name is refused with the listed ones, and every adapter keeps
the same end-of-episode rules (envs.autoreset, checked here against hand-written cases)."""

import jax.numpy as jnp
import numpy as np
import pytest

from purejaxvpg import envs
from purejaxvpg.envs import autoreset, suites


def test_every_suite_is_listed_by_prefix_with_its_extra():
    prefixes = [s.prefix for s in suites.SUITES]
    assert prefixes == ["brax/", "jumanji/", "craftax/", "xminigrid/", "playground/"]
    for suite in suites.SUITES:
        assert suite.names and all("/" not in n for n in suite.names)
        listed = set(suite.ids) & set(envs.registered())
        assert listed == (set(suite.ids) if suite.available() else set())


@pytest.mark.parametrize("suite", suites.SUITES, ids=lambda s: s.prefix)
def test_a_missing_extra_is_named_with_its_pip_command(suite, monkeypatch):
    monkeypatch.setattr(suites, "_installed", lambda package: False)
    env_id = suite.ids[0]
    assert env_id not in envs.registered()
    with pytest.raises(ValueError, match=rf"^env_id: {env_id} needs the '{suite.extra}' extra .*"
                                         rf"pip install 'purejaxvpg\[{suite.extra}\]'"):
        envs.make(env_id)
    import purejaxvpg as pjv

    with pytest.raises(ValueError, match=rf"pip install 'purejaxvpg\[{suite.extra}\]'"):
        pjv.Config(env_id=env_id).validate()  # before anything is built or compiled


@pytest.mark.parametrize("suite", [s for s in suites.SUITES if not s.open_names], ids=lambda s: s.prefix)
def test_an_unlisted_name_is_refused_with_the_listed_ones(suite, monkeypatch):
    monkeypatch.setattr(suites, "_installed", lambda package: True)
    with pytest.raises(ValueError, match=rf"^env_id: '{suite.prefix}NoSuchEnv' is not one of .*{suite.ids[0]}"):
        envs.make(suite.prefix + "NoSuchEnv")


def test_end_flags_time_limit_is_truncation_and_termination_wins():
    done = jnp.array([False, True, False, True])
    time = jnp.array([3, 3, 5, 5])
    terminated, truncated = autoreset.end_flags(done, time, 5)
    np.testing.assert_array_equal(terminated, [False, True, False, True])
    np.testing.assert_array_equal(truncated, [False, False, True, False])


def test_timestep_flags_read_discount_never_step_type_alone():
    # FIRST, MID, LAST with discount 0 (terminal), LAST with discount 1 (the library's time limit)
    step_type = jnp.array([0, 1, 2, 2, 1])
    discount = jnp.array([1.0, 1.0, 0.0, 1.0, 1.0])
    terminated, truncated = autoreset.timestep_flags(step_type, discount)
    np.testing.assert_array_equal(terminated, [False, False, True, False, False])
    np.testing.assert_array_equal(truncated, [False, False, False, True, False])
    # the adapter's own limit (time >= 4) truncates a MID step, never a terminal one
    time = jnp.array([4, 4, 4, 1, 1])
    terminated, truncated = autoreset.timestep_flags(step_type, discount, time, 4)
    np.testing.assert_array_equal(terminated, [False, False, True, False, False])
    np.testing.assert_array_equal(truncated, [True, True, False, True, False])


def test_select_takes_the_reset_branch_where_ended():
    ended = jnp.array([True, False])
    out = autoreset.select(ended, (jnp.array([1.0, 1.0]), {"s": jnp.array([7, 7])}),
                           (jnp.array([2.0, 2.0]), {"s": jnp.array([8, 8])}))
    np.testing.assert_array_equal(out[0], [1.0, 2.0])
    np.testing.assert_array_equal(out[1]["s"], [7, 8])


def test_flatten_observation_rule_leaf_order_float32():
    from typing import NamedTuple

    class Obs(NamedTuple):  # field order, not alphabetical
        grid: jnp.ndarray
        mask: jnp.ndarray
        step: jnp.ndarray

    obs = Obs(grid=jnp.arange(6, dtype=jnp.int8).reshape(2, 3), mask=jnp.array([True, False]),
              step=jnp.array(9, jnp.int32))
    flat = autoreset.flatten_observation(obs)
    assert flat.dtype == jnp.float32
    np.testing.assert_array_equal(flat, [0, 1, 2, 3, 4, 5, 1, 0, 9])
    flat_dict = autoreset.flatten_observation({"b": jnp.array([2.0]), "a": jnp.array([1.0, 1.5])})
    np.testing.assert_array_equal(flat_dict, [1.0, 1.5, 2.0])  # a dict's keys sorted


def test_the_cli_refuses_an_unsupported_suite_environment_naming_its_spec(capsys, monkeypatch, tmp_path):
    """An unlisted id of an open suite reaches the adapter, whose refusal the CLI prints (exit 2)."""
    pytest.importorskip("jumanji")
    from conftest import forbid_compiling

    from purejaxvpg.tools import cli

    forbid_compiling(monkeypatch)
    code = cli.main(["train", "--env-id", "jumanji/Minesweeper-v0", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "jumanji/Minesweeper-v0 has a MultiDiscreteArray action spec" in err, err
    assert "Traceback" not in err


def test_a_suite_that_is_installed_but_does_not_import_names_its_extra():
    """One place for every suite: an ImportError while building becomes a ValueError naming the extra."""
    broken = suites.Suite(prefix="fake/", package="json", extra="fake", names=("x",),
                          builder="no_such_adapter_module_xyz:make")
    with pytest.raises(ValueError, match=r"^env_id: fake/x: json is installed but does not import "
                                         r"\(No module named 'no_such_adapter_module_xyz'\); "
                                         r"reinstall it: pip install 'purejaxvpg\[fake\]'\.$"):
        broken.build("x")
