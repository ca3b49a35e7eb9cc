"""`purejaxvpg plot`: the figure read back from matplotlib's own objects, its values against
scipy's trimmed mean of the runs' metrics.npz, smoothing that keeps x, and its errors."""

import json

import numpy as np
import pytest
from scipy import stats as sps

from purejaxvpg.report import plots
from purejaxvpg.tools import cli, export, plot

TINY = ["--num-seeds", "5", "--total-steps", "2048", "--num-envs", "4", "--num-steps", "32", "--hidden-sizes", "16",
        "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    where = tmp_path_factory.mktemp("plot")
    for name, flags in (("a", []), ("b", ["--policy-lr", "3e-3", "--eval-every", "4", "--eval-episodes", "2"]),
                        ("acro", ["--env-id", "Acrobot-v1"])):
        assert cli.main(["train", *TINY, *flags, "--out", str(where / name)]) == 0
    return where


def _figure(runs_, metric="episode_return", x="env_steps", window=1):
    panels = plot.curves(runs_, metric, x, window, reps=200)
    return panels, plots.panels_figure(panels, "x", "y", points=frozenset(
        label for p in panels.values() for label in p) if metric.startswith("eval_") else frozenset())


def test_one_curve_per_run_with_the_iqm_of_its_seeds(runs, tmp_path):
    out = tmp_path / "fig.pdf"
    assert cli.main(["plot", f"first={runs / 'a'}", f"second={runs / 'b'}", "--out", str(out)]) == 0
    assert out.read_bytes()[:5] == b"%PDF-"
    loaded = [export.load_run(runs / "a", "first"), export.load_run(runs / "b", "second")]
    _, fig = _figure(loaded)
    (ax,) = fig.axes
    assert ax.get_title() == "CartPole-v1" and [line.get_label() for line in ax.get_lines()] == ["first", "second"]
    assert len(ax.collections) == 2  # one band each
    with np.load(runs / "a" / "metrics.npz") as data:
        returns, steps = data["episode_return"].astype(float), data["env_steps"][0]
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), steps)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), sps.trim_mean(returns, 0.25, axis=0))


def test_environments_get_panels_and_evaluations_are_points(runs):
    _, fig = _figure([export.load_run(runs / "a"), export.load_run(runs / "acro")])
    assert [ax.get_title() for ax in fig.axes] == ["CartPole-v1", "Acrobot-v1"]
    run = export.load_run(runs / "b")
    _, fig = _figure([run], metric="eval_return_greedy")
    (ax,) = fig.axes
    assert not ax.get_lines() or all(line.get_linestyle() == "None" for line in ax.get_lines())
    (bars,) = ax.containers  # one errorbar set: the evaluations
    with np.load(runs / "b" / "metrics.npz") as data:
        greedy, eval_steps = data["eval_return_greedy"].astype(float), data["eval_env_steps"]
    np.testing.assert_allclose(bars.lines[0].get_xdata(), eval_steps[: greedy.shape[1]])
    np.testing.assert_allclose(bars.lines[0].get_ydata(), sps.trim_mean(greedy, 0.25, axis=0))


def test_other_x_axes(runs):
    run = export.load_run(runs / "a")
    updates = plot.x_values(run, "episode_return", "updates")
    np.testing.assert_array_equal(updates, np.arange(1, updates.size + 1))
    seconds = plot.x_values(run, "episode_return", "seconds")
    results = json.loads((runs / "a" / "config.json").read_text())["results"]
    assert seconds[-1] == pytest.approx(results["run_seconds"]) and np.all(np.diff(seconds) > 0)


def test_smoothing_is_centred_and_keeps_its_x():
    bump = np.exp(-0.5 * ((np.arange(41) - 20) / 3.0) ** 2)
    smoothed = plots.smooth(bump[None], 7)[0]
    assert smoothed.argmax() == 20  # a trailing average would move the peak to 23
    assert smoothed[20] == pytest.approx(bump[17:24].mean())
    assert smoothed[0] == pytest.approx(bump[:4].mean()) and smoothed[-1] == pytest.approx(bump[-4:].mean())
    np.testing.assert_array_equal(plots.smooth(bump, 1), bump)
    with pytest.raises(ValueError, match="odd"):
        plots.smooth(bump, 4)


@pytest.mark.parametrize("argv, message", [
    (["--out", "fig.jpg"], "must end in .png, .pdf, .svg"),
    (["--smooth", "4"], "smooth: an odd number"),
    (["--x", "hours"], "x: unknown 'hours'"),
    (["--metric", "reward"], "metric: unknown reward"),
])
def test_bad_options_are_one_line_errors(runs, capsys, tmp_path, argv, message):
    argv = [a if a != "fig.jpg" else str(tmp_path / a) for a in argv]
    assert cli.main(["plot", str(runs / "a"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_an_existing_figure_is_kept_unless_forced(runs, capsys, tmp_path):
    out = tmp_path / "fig.png"
    out.write_bytes(b"mine")
    assert cli.main(["plot", str(runs / "a"), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"mine"
    assert cli.main(["plot", str(runs / "a"), "--out", str(out), "--force"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_diverged_seeds_are_left_out_and_counted(runs, tmp_path):
    import shutil

    copy = tmp_path / "a"
    shutil.copytree(runs / "a", copy)
    with np.load(copy / "metrics.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["episode_return"] = arrays["episode_return"].copy()
    arrays["episode_return"][0, 3] = np.nan  # seed 0 diverged
    np.savez(copy / "metrics.npz", **arrays)
    _, fig = _figure([export.load_run(copy, "a")])
    (line,) = fig.axes[0].get_lines()
    assert line.get_label() == "a (4 of 5 seeds; others diverged)"
    np.testing.assert_allclose(line.get_ydata(), sps.trim_mean(arrays["episode_return"][1:].astype(float), 0.25,
                                                               axis=0))
