"""`purejaxvpg compare`: its numbers against the definitions, computed here from the runs'
metrics.npz with scipy and numpy, and its errors before any run is read."""

import json

import numpy as np
import pytest
from scipy import stats as sps

from purejaxvpg.report import comparisons, plots
from purejaxvpg.tools import cli

TINY = ["--num-seeds", "6", "--total-steps", "2048", "--num-envs", "4", "--num-steps", "32", "--hidden-sizes", "16",
        "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    where = tmp_path_factory.mktemp("compare")
    for name, flags in (("slow", ["--policy-lr", "1e-4"]), ("fast", ["--policy-lr", "3e-3"]),
                        ("acro", ["--env-id", "Acrobot-v1"])):
        assert cli.main(["train", *TINY, *flags, "--out", str(where / name)]) == 0
    return where


def _final(run_dir):
    """(final greedy evaluation [seeds], training return [seeds, updates], env steps), as
    export reads them (float64)."""
    with np.load(run_dir / "metrics.npz") as data:
        returns = data["episode_return"].astype(np.float64)
        return data["final_eval_return_greedy"].astype(np.float64), returns, data["env_steps"][0]


def test_numbers_are_the_definitions(runs, capsys):
    out = runs / "figures"
    assert cli.main(["compare", f"a={runs / 'slow'}", f"b={runs / 'fast'}", "--gap-target", "30",
                     "--reps", "500", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "compare.json").read_text())
    a, curve_a, steps = _final(runs / "slow")
    b, _, _ = _final(runs / "fast")
    assert record["baseline"] == "a" and record["tasks"] == ["CartPole-v1"]
    assert record["metric"] == "eval_return_greedy"  # the default: each seed's final greedy evaluation
    assert record["labels"]["a"]["iqm"]["point"] == pytest.approx(sps.trim_mean(a, 0.25))
    assert record["labels"]["b"]["mean"]["point"] == pytest.approx(b.mean())
    assert record["labels"]["a"]["optimality_gap"]["point"] == pytest.approx(np.maximum(30 - a, 0).mean())
    u = sps.mannwhitneyu(b, a, alternative="two-sided").statistic
    assert record["labels"]["b"]["probability_of_improvement"]["point"] == pytest.approx(u / (len(a) * len(b)))
    assert "probability_of_improvement" not in record["labels"]["a"]  # the baseline against itself
    profile = record["performance_profile"]["b"]
    taus = np.array(profile["x"])
    assert taus[0] == min(a.min(), b.min()) and taus[-1] == max(a.max(), b.max())
    np.testing.assert_allclose(profile["point"], [(b > t).mean() for t in taus])
    # one evaluation per run (the final one) is no curve: the training return's is drawn
    assert record["sample_efficiency_metric"] == "episode_return"
    curve = record["sample_efficiency"]["a"]
    np.testing.assert_allclose(curve["x"], steps)  # every update: fewer than 200
    np.testing.assert_allclose(curve["point"], sps.trim_mean(curve_a, 0.25, axis=0))
    assert np.all(np.array(curve["low"]) <= np.array(curve["point"]) + 1e-9)
    assert "P(b > a) [95% CI]" in printed and "optimality gap" in printed
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "performance_profile.png",
                                                     "sample_efficiency.png"]
    assert (out / "sample_efficiency.png").read_bytes()[:4] == b"\x89PNG"


def test_the_figure_draws_each_band_it_is_given():
    bands = {"a": comparisons.Band(np.arange(3) * 1e6, np.array([1.0, 2, 3]), np.zeros(3), np.full(3, 4.0)),
             "b": comparisons.Band(np.arange(3) * 1e6, np.array([3.0, 2, 1]), np.zeros(3), np.full(3, 4.0))}
    fig = plots.bands_figure(bands, "steps", "IQM")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [3, 2, 1])
    fig.canvas.draw()
    assert ax.xaxis.get_major_formatter()(2e6) == "2M"  # readable step units


def test_several_environments_need_score_ranges(runs, capsys):
    both = [f"a={runs / 'slow'}", f"a={runs / 'acro'}", f"b={runs / 'fast'}"]
    assert cli.main(["compare", *both[:2], "--score-range", "CartPole-v1=0:500"]) == 2
    assert "give --score-range ENV=LOW:HIGH for Acrobot-v1" in capsys.readouterr().err
    # b has no Acrobot run: refused as rliable arrays need one run per task
    assert cli.main(["compare", *both, "--score-range", "CartPole-v1=0:500", "--score-range",
                     "Acrobot-v1=-500:0"]) == 2
    assert "has no run of Acrobot-v1" in capsys.readouterr().err
    assert cli.main(["compare", f"a={runs / 'slow'}", f"a={runs / 'acro'}", "--reps", "50",
                     "--score-range", "CartPole-v1=0:500", "--score-range", "Acrobot-v1=-500:0"]) == 0
    printed = capsys.readouterr().out
    a, _, _ = _final(runs / "slow")
    c, _, _ = _final(runs / "acro")
    normalised = np.concatenate([a / 500, (c + 500) / 500])
    assert f"{sps.trim_mean(normalised, 0.25):.3f} [" in printed and "normalised score" in printed  # 3 decimals


@pytest.mark.parametrize("argv, message", [
    (["--score-range", "CartPole-v1=5:5"], "score_range: expected ENV=LOW:HIGH"),
    (["--score-range", "nonsense"], "score_range: expected ENV=LOW:HIGH"),
    (["--metric", "returns"], "metric: unknown returns"),
    (["--reps", "0"], "reps: must be >= 1"),
    (["--baseline", "zzz"], "baseline: no runs labelled 'zzz'"),
])
def test_bad_options_are_one_line_errors(runs, capsys, argv, message):
    assert cli.main(["compare", str(runs / "slow"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_out_must_be_new(runs, capsys, tmp_path):
    (tmp_path / "x").write_text("keep")
    assert cli.main(["compare", str(runs / "slow"), "--out", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err and (tmp_path / "x").read_text() == "keep"
