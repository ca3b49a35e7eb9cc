"""Sweeps: settings x seeds in one vmapped call give what separate runs give."""

import dataclasses

import numpy as np
import pytest

import purejaxvpg as pjv
from purejaxvpg import cli, sweep

BASE = pjv.Config(env_id="CartPole-v1", total_steps=4 * 32 * 5, num_envs=4, num_steps=32)
SETTINGS = [
    {"policy_lr": 1e-3, "value_iters": 10, "gamma": 0.99},  # the defaults
    {"policy_lr": 5e-3, "value_iters": 3, "gamma": 0.9},
]


@pytest.fixture(scope="module")
def swept():
    return sweep.run(BASE, SETTINGS, num_seeds=2, seed=3, reps=200)


@pytest.mark.parametrize("index", [0, 1])
def test_each_setting_equals_a_separate_run_of_that_config(swept, index):
    alone = pjv.train(dataclasses.replace(BASE, **SETTINGS[index]), num_seeds=2, seed=3)
    rows = slice(2 * index, 2 * index + 2)
    for name in pjv.METRIC_NAMES:
        np.testing.assert_allclose(swept.result.metrics[name][rows], alone.metrics[name],
                                   rtol=2e-4, atol=2e-4, err_msg=name)
    np.testing.assert_allclose(swept.final_returns[index], alone.metrics["episode_return"][:, -1], rtol=2e-4)


def test_table_ranks_settings_by_iqm(swept):
    order = swept.ranking()
    iqms = [swept.summaries[i]["iqm"].point for i in order]
    assert iqms == sorted(iqms, reverse=True)
    lines = swept.table().splitlines()
    assert "IQM [95% CI]" in lines[0] and len(lines) == 2 + len(SETTINGS)


def test_grid_is_the_product_of_values():
    grid = sweep.parse_grid(["policy_lr=1e-3,3e-3", "value-iters=2,5,10"])
    settings = sweep.grid_settings(BASE, grid)
    assert len(settings) == 6 and settings[0] == {"policy_lr": 1e-3, "value_iters": 2}
    assert all(isinstance(s["value_iters"], int) for s in settings)


def test_random_settings_stay_in_range():
    ranges = sweep.parse_ranges(["policy_lr=1e-4:1e-2:log", "gae_lambda=0.9:1.0"])
    settings = sweep.random_settings(BASE, ranges, 50, seed=0)
    lrs = np.array([s["policy_lr"] for s in settings])
    assert ((lrs >= 1e-4) & (lrs <= 1e-2)).all() and (np.log10(lrs) < -3).any() and (np.log10(lrs) > -3).any()
    assert all(0.9 <= s["gae_lambda"] <= 1.0 for s in settings)


@pytest.mark.parametrize("argv,message", [
    (["--grid", "hidden_sizes=1,2"], "cannot be swept"),
    (["--grid", "gamma=0.9,1.5"], "gamma: must be in [0, 1]"),
    (["--grid", "value_iters=2.5"], "value_iters must be an integer"),
    (["--samples", "4", "--range", "policy_lr=1:0.1"], "low <= high"),
    ([], "give either --grid"),
])
def test_bad_sweeps_are_clear_errors_before_compiling(argv, message, capsys):
    assert cli.main(["sweep", *argv]) == 2
    assert message in capsys.readouterr().err
