"""benchmarks/returns.py: one suite entry measured end to end (tiny), and the table."""

import dataclasses

import numpy as np
import pytest

import purejaxvpg as pjv
from benchmarks import returns


@pytest.fixture(scope="module")
def record(monkeypatch_module):
    tiny = {"total_steps": 4 * 32 * 4, "num_envs": 4, "num_steps": 32}
    monkeypatch_module.setitem(pjv.PRESETS, "Bandit-known", tiny)
    return returns.measure("Bandit-known", num_seeds=3, eval_episodes=8)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_measure_reports_final_and_greedy_returns_with_intervals(record):
    assert record["num_seeds"] == 3 and record["env_steps_per_seed"] == 4 * 32 * 4
    assert record["config"]["final_eval"] and record["config"]["eval_every"] == 0  # the final evaluation alone
    for key in ("final_return", "greedy_eval_return", "stochastic_eval_return"):
        for stat in ("iqm", "mean", "median"):
            interval = record[key][stat]
            assert interval["low"] <= interval["point"] <= interval["high"]
    # the bandit's arm means are 0.2 to 0.9: every greedy return lies in that range (+ noise)
    greedy = np.array(record["greedy_eval_return_per_seed"])
    assert ((greedy > 0.1) & (greedy < 1.0)).all()
    np.testing.assert_allclose(record["greedy_eval_return"]["mean"]["point"], greedy.mean(), rtol=1e-6)


def test_table_has_a_row_per_environment_and_cites_published_figures(record):
    other = dataclasses.replace(pjv.Config(), env_id="CartPole-v1")
    records = {"Bandit-known": record, "CartPole-v1": {**record, "env_id": other.env_id}}
    text = returns.render(records)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 3  # header + 2
    assert rows[1].startswith("| CartPole-v1 ")  # suite order first
    assert "500 (PPO2 (rl-baselines-zoo))" in rows[1]


@pytest.mark.parametrize(
    ("env_id", "expected"),
    [
        ("Bandit-known", 0.5),  # uniform over arms with means 0.2, 0.5, 0.9, 0.4
        # a ~ U(-2, 2), reward -(a - 0.7)^2: E = -(Var a + (E a - 0.7)^2) = -(16/12 + 0.49)
        ("ContinuousTarget-known", -(16 / 12 + 0.49)),
    ],
)
def test_random_policy_baseline_matches_the_closed_form_expected_return(env_id, expected):
    per_seed = returns.random_policy_returns(pjv.Config.preset(env_id), num_seeds=4, episodes=2048, seed=0)
    assert len(per_seed) == 4 and len(set(per_seed)) == 4  # independent episodes per seed
    # 8192 one-step episodes: standard errors 0.003 (bandit) and 0.022 (target, sd of one return 2.0)
    assert np.mean(per_seed) == pytest.approx(expected, abs=0.1 if "Target" in env_id else 0.015)
