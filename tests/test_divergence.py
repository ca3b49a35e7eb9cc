"""A seed whose metrics or parameters become non-finite is flagged (which seed, from which
update) and left out of every aggregate, never averaged in; a run whose every seed
diverged still writes its run directory."""

import dataclasses
import json

import jax
import numpy as np
import pytest
from scipy import stats as sps

import purejaxvpg as pjv
from purejaxvpg.host.driver import first_nonfinite_update
from purejaxvpg.report import plots, summary
from purejaxvpg.tools import cli, sweep

# Pendulum with learning rates of 1e9 and no clipping: the Gaussian's log-std explodes
# within the first updates (checked on the CPU); 8 updates of 128 steps end a 200-step episode.
PENDULUM = pjv.Config(env_id="Pendulum-v1", total_steps=4 * 32 * 8, num_envs=4, num_steps=32,
                      max_grad_norm=None)
HUGE = {"policy_lr": 1e9, "value_lr": 1e9}


def _strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"{constant} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_first_nonfinite_update_at_known_positions():
    seeds, updates, every = 5, 6, 2
    config = pjv.Config(total_steps=4 * 32 * updates, num_envs=4, num_steps=32, eval_every=every)
    metrics = {name: np.ones((seeds, updates), np.float32) for name in pjv.METRIC_NAMES}
    metrics["episodes_finished"] = np.ones((seeds, updates), np.int32)
    metrics["policy_loss"][0, 3:] = np.nan  # seed 0: a loss from update 3
    metrics["value_grad_norm"][2, 1] = np.inf  # seed 2: one gradient norm at update 1
    evals = {"eval_return_greedy": np.ones((seeds, updates // every), np.float32)}
    evals["eval_return_greedy"][3, 1] = np.nan  # seed 3: evaluation 1, after update 3
    params = {"w": np.ones((seeds, 3, 2), np.float32)}
    params["w"][4, 2, 1] = -np.inf  # seed 4: only its final parameters
    at = first_nonfinite_update(config, metrics, evals, params)
    np.testing.assert_array_equal(at, [3, -1, 1, 2 * every - 1, updates - 1])


@pytest.fixture(scope="module")
def mixed():
    """Settings x 2 seeds in one pjv.train call (a sweep): runs of the 1e9 setting diverge."""
    return sweep.run(PENDULUM, [{"policy_lr": 1e-3, "value_lr": 3e-3}, HUGE], num_seeds=2, seed=0, reps=200)


def test_diverging_seeds_are_flagged_from_their_first_non_finite_update(mixed):
    result = mixed.result  # the pjv.train result: runs 0, 1 sane, 2, 3 diverged
    at = result.diverged_at
    np.testing.assert_array_equal(at[:2], [-1, -1])
    assert (at[2:] >= 0).all()
    for run in range(4):  # the definition, from the raw arrays
        bad = np.zeros(result.metrics["env_steps"].shape[1], bool)
        for value in result.metrics.values():
            bad |= ~np.isfinite(value[run])
        params_ok = all(np.isfinite(np.asarray(x[run])).all() for x in jax.tree.leaves(result.params))
        if at[run] < 0:
            assert not bad.any() and params_ok
        else:
            assert bad[at[run]] and not bad[: at[run]].any()
    np.testing.assert_array_equal(result.finite_seeds, at < 0)


def test_diverged_runs_are_left_out_of_a_sweeps_statistics(mixed):
    np.testing.assert_array_equal(mixed.diverged_at[0], [-1, -1])
    assert (mixed.diverged_at[1] >= 0).all()
    sane = mixed.summaries[0]["iqm"].point
    assert np.isfinite(sane) and sane == pytest.approx(sps.trim_mean(mixed.final_scores[0], 0.25))
    assert mixed.summaries[1] == {} and mixed.ranking() == [0, 1]
    assert "2/2" in mixed.table().splitlines()[2] and "2 of 4 runs diverged" in mixed.table()


def test_a_settings_statistics_use_only_its_finite_runs():
    final = np.array([[1.0, np.nan, 3.0, 10.0, 2.0], [np.nan, 5.0, 1.0, 1.0, 1.0], [np.nan] * 5])
    diverged_at = np.where(np.isnan(final), 4, -1)
    diverged_at[0, 3] = 7  # diverged after a finite last return: still left out
    rows = sweep.summarize(final, diverged_at, reps=100)
    assert rows[0]["iqm"].point == pytest.approx(sps.trim_mean([1.0, 3.0, 2.0], 0.25))
    assert rows[1]["mean"].point == pytest.approx(np.mean([5.0, 1.0, 1.0, 1.0]))
    assert rows[2] == {}


def test_summary_reports_divergence_and_aggregates_only_finite_seeds(mixed):
    result = mixed.result
    text = summary.summary(result, reps=200)
    diverged = ", ".join(f"seed {i} at update {result.diverged_at[i]}" for i in (2, 3))
    assert f"2 of 4 seeds diverged (non-finite metrics or parameters): {diverged}" in text
    assert "4 (2 diverged, left out below)" in text
    finite = result.metrics["episode_return"][:2, -1]
    greedy = result.final_eval["eval_return_greedy"][:2]
    assert f"final greedy eval return: IQM [95% CI]        {sps.trim_mean(greedy, 0.25):.1f} [" in text
    assert f"final training return: IQM [95% CI]           {sps.trim_mean(finite, 0.25):.1f} [" in text
    assert "nan" not in text.lower()
    record = _strict_json(json.dumps(summary.results(result)))
    assert record["diverged"] == {"count": 2, "of": 4, "at_update": {"2": int(result.diverged_at[2]),
                                                                      "3": int(result.diverged_at[3])}}
    assert record["final_return"]["seeds"] == 2
    assert record["final_return"]["mean"] == pytest.approx(float(finite.mean()))
    assert record["final"]["metric"] == "eval_return_greedy" and record["final"]["seeds"] == 2
    assert record["final"]["mean"] == pytest.approx(float(greedy.mean()))
    # a seed range (seeds 64..67 of a run): the line names the global seeds with their index
    ranged = summary.divergence(dataclasses.replace(result, seed_start=64))
    assert ranged.endswith(f"seed 66 (index 2) at update {result.diverged_at[2]}, "
                           f"seed 67 (index 3) at update {result.diverged_at[3]}")


def test_a_result_knows_the_global_seeds_it_holds():
    config = pjv.Config(total_steps=4 * 8, num_envs=4, num_steps=8)
    assert pjv.train(config, num_seeds=1, seed_start=5).seed_start == 5


def test_learning_curve_leaves_diverged_seeds_out(mixed, tmp_path, monkeypatch):
    seen = []
    real = plots.iqm_band
    monkeypatch.setattr(plots, "iqm_band", lambda x, **kw: seen.append(x) or real(x, **kw))
    m = mixed.result.metrics
    assert np.isnan(m["episode_return"][2:, -1]).all()  # the diverged seeds' returns
    plots.learning_curve(m["env_steps"][0], m["episode_return"], tmp_path / "c.png", reps=20)
    np.testing.assert_array_equal(seen.pop(), m["episode_return"][:2])  # non-finite rows: out
    plots.learning_curve(m["env_steps"][0], m["episode_return"], tmp_path / "c.png", reps=20,
                         exclude=np.array([False, True, False, False]))  # flagged, finite returns
    np.testing.assert_array_equal(seen.pop(), m["episode_return"][:1])
    # all left out: a plot that says so, no error
    plots.learning_curve(m["env_steps"][0], np.full((3, m["env_steps"].shape[1]), np.nan), tmp_path / "n.png")
    assert not seen and (tmp_path / "n.png").stat().st_size > 1000


def test_train_command_with_every_seed_diverged_still_writes_its_run(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--env-id", "Pendulum-v1", "--total-steps", str(PENDULUM.total_steps), "--num-envs", "4",
            "--num-steps", "32", "--policy-lr", "1e9", "--value-lr", "1e9", "--max-grad-norm", "none",
            "--num-seeds", "2", "--no-progress", "--out", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "2 of 2 seeds diverged" in text and "none: all 2 seeds diverged" in text
    record = _strict_json((out / "config.json").read_text())["results"]
    assert record["diverged"]["count"] == 2 and record["final_return"]["mean"] is None
    assert record["final"]["mean"] is None and record["final"]["iqm"] is None
    assert (out / "learning_curve.png").exists() and (out / "metrics.npz").exists()

    # its policies act on NaN: refused, naming the seed and the update, unless asked for
    at = record["diverged"]["at_update"]["1"]
    with pytest.raises(ValueError, match=rf"^seed: seed 1 diverged at update {at};.*allow_diverged=True"):
        pjv.load_policy(out, seed=1)
    act = pjv.load_policy(out, seed=1, allow_diverged=True)
    assert np.isnan(np.asarray(act(np.zeros(3, np.float32)))).all()


def test_a_diverged_seeds_policy_is_refused_unless_asked_for(mixed):
    result = mixed.result
    bad = int(np.flatnonzero(result.diverged_at >= 0)[0])
    good = int(np.flatnonzero(result.diverged_at < 0)[0])
    with pytest.raises(ValueError, match=rf"^seed: seed {bad} diverged at update {result.diverged_at[bad]};"):
        result.policy(bad)
    assert np.isfinite(np.asarray(result.policy(good)(np.zeros(3, np.float32)))).all()
    result.policy(bad, allow_diverged=True)
