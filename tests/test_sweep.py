"""Sweeps: settings x seeds in one vmapped call give what separate runs give."""

import dataclasses
import re
from pathlib import Path

import chex
import numpy as np
import pytest
from conftest import forbid_compiling

import purejaxvpg as pjv
from purejaxvpg.tools import cli, sweep

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
    setting = {name: values[rows] for name, values in swept.result.metrics.items()}
    chex.assert_trees_all_close(setting, alone.metrics, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(swept.final_scores[index], alone.final_eval["eval_return_greedy"], rtol=2e-4)


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


@pytest.mark.parametrize("argv, message", [
    (["--samples", "4", "--range", "gamma=0.5:1.2"], "sweep: --range gamma: must be in [0, 1], got 1.2."),
    (["--samples", "4", "--range", "value_iters=0.2:3"], "sweep: --range value_iters: must be an integer >= 1, got 0."),
])
def test_a_range_reaching_out_of_its_field_is_refused_naming_the_range(argv, message, capsys, monkeypatch):
    """Not the value some sample happened to draw (the probe got 'got 1.1369616873214543')."""
    forbid_compiling(monkeypatch)
    assert cli.main(["sweep", *argv]) == 2
    assert capsys.readouterr().err == f"purejaxvpg: error: {message}\n"


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
    (["--grid", "policy_lr=1e-3", "--grid", "policy_lr=3e-3"], "--grid policy_lr is given twice"),
    (["--grid", "value_iters=inf"], "value_iters value must be a finite number, got 'inf'"),
    (["--grid", "gamma=nan"], "gamma value must be a finite number"),
    (["--grid", "policy_lr=1e-3,fast"], "policy_lr value 'fast' is not a number"),
    (["--samples", "2", "--range", "policy_lr=abc:1"], "policy_lr low 'abc' is not a number"),
    (["--samples", "2", "--range", "gamma=0:inf"], "gamma high must be a finite number"),
    (["--samples", "2", "--range", "gamma=0.9:1", "--range", "gamma=0.8:1"], "--range gamma is given twice"),
    (["--grid", "gamma=0.9", "--num-seeds", "0"], "num_seeds: must be an integer >= 1"),
    (["--grid", "gamma=0.9", "--seed", "-1"], "seed: must be an integer >= 0"),
])
def test_bad_sweeps_are_clear_errors_before_compiling(argv, message, capsys, monkeypatch):
    forbid_compiling(monkeypatch)
    assert cli.main(["sweep", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_sweep_out_that_cannot_be_written_is_refused_before_the_work(where, tmp_path, capsys, monkeypatch):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if where == "a file" else tmp_path / "f" / "sub"
    forbid_compiling(monkeypatch)
    assert cli.main(["sweep", "--grid", "gamma=0.9,0.99", "--out", str(out)]) == 2
    where = "is a file" if where == "a file" else f"lies under the file {tmp_path / 'f'}"
    assert capsys.readouterr().err.startswith(f"purejaxvpg: error: out: {out} {where}; pass a path in a directory.")


@pytest.mark.parametrize("held", ["sweep.json", "sweep.csv", "settings"])
def test_sweep_out_holding_an_earlier_sweep_is_refused_before_the_work(held, tmp_path, capsys, monkeypatch):
    (tmp_path / held).write_text("an earlier sweep")
    forbid_compiling(monkeypatch)
    assert cli.main(["sweep", "--grid", "gamma=0.9,0.99", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"out: {tmp_path} already holds a sweep ({held}); pass another --out" in err and "Traceback" not in err
    assert (tmp_path / held).read_text() == "an earlier sweep"


def test_a_sweep_result_never_replaces_an_earlier_sweep(swept, tmp_path):
    """From Python too, and even when the earlier one appears after the check (exclusive create)."""
    first = [p.read_text() for p in swept.write(tmp_path / "one") if p.is_file()]
    with pytest.raises(ValueError, match="already holds a sweep"):
        swept.write(tmp_path / "one")
    assert [p.read_text() for p in ((tmp_path / "one") / n for n in sweep.SWEEP_FILES)] == first
    (tmp_path / "two").mkdir()
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(sweep, "check_new_out", lambda out: (Path(out) / "sweep.json").write_text("raced"))
    try:
        with pytest.raises(FileExistsError):
            swept.write(tmp_path / "two")
    finally:
        monkeypatch.undo()
    assert (tmp_path / "two" / "sweep.json").read_text() == "raced"


def test_sweep_writes_csv_and_strict_json(swept, tmp_path):
    import csv
    import json

    from scipy import stats as sps

    paths = swept.write(tmp_path)
    assert [p.name for p in paths] == ["sweep.json", "sweep.csv", "settings"]
    record = json.loads(paths[0].read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert len(record["settings"]) == len(SETTINGS)
    with open(paths[1]) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(SETTINGS)
    for row in rows:
        i = next(k for k, st in enumerate(SETTINGS) if all(float(row[n]) == v for n, v in st.items()))
        full = {**{n: getattr(BASE, n) for n in sweep.SWEEPABLE}, **SETTINGS[i]}
        assert {n: float(row[n]) for n in full} == pytest.approx(full)  # every hyperparameter
        assert float(row["iqm"]) == pytest.approx(sps.trim_mean(swept.final_scores[i], 0.25))
        assert float(row["mean"]) == pytest.approx(swept.final_scores[i].mean())
        assert int(row["seeds"]) == 2 and int(row["diverged"]) == 0
        assert float(row["iqm_low"]) <= float(row["iqm"]) <= float(row["iqm_high"])
    assert [int(r["rank"]) for r in rows] == [1, 2]


@pytest.mark.parametrize("argv", [["--samples", "1000000", "--range", "policy_lr=1e-4:1e-2:log"],
                                  ["--grid", "policy_lr=" + ",".join(f"{i}e-4" for i in range(1, 101)),
                                   "--grid", "gamma=" + ",".join(f"0.{i:03d}" for i in range(900, 1000)),
                                   "--grid", "value_iters=" + ",".join(str(i) for i in range(1, 101))]])
def test_a_sweep_too_large_for_the_host_is_refused_before_anything_is_built(argv, capsys, monkeypatch):
    """Settings x seeds counted first: a million settings is one line, not minutes of silence."""
    forbid_compiling(monkeypatch)
    monkeypatch.setattr(sweep, "grid_settings", lambda *a: pytest.fail("settings built before the size check"))
    monkeypatch.setattr(sweep, "random_settings", lambda *a: pytest.fail("settings built before the size check"))
    assert cli.main(["sweep", *argv]) == 2
    err = capsys.readouterr().err
    assert re.search(r"^purejaxvpg: error: sweep: 1,000,000 settings x 8 seeds = 8,000,000 runs would hold about "
                     r"[\d.]+ GiB of per-update metrics on the host .*sweep fewer settings", err), err


def test_a_sweep_says_how_many_runs_it_trains(swept, capsys, monkeypatch):
    monkeypatch.setattr(sweep, "run", lambda *a, **k: swept)
    assert cli.main(["sweep", "--grid", "gamma=0.9,0.99", "--num-seeds", "2", "--total-steps", "512"]) == 0
    assert "sweep: 2 settings x 2 seeds = 4 runs" in capsys.readouterr().err


def test_a_large_sweep_shows_its_settings_being_checked(capsys, monkeypatch, tmp_path):
    """20,000 settings (~1 s to check): a line every 10,000, before the training's lines; a
    value out of its range is refused in one line before the sweep is counted or announced
    (the probe saw the announcement first), and leaves no --out behind."""
    grid = ["--grid", "policy_lr=" + ",".join(f"{i}e-5" for i in range(1, 201)),
            "--grid", "gamma=" + ",".join(f"0.{i:03d}" for i in range(900, 1000))]
    monkeypatch.setattr(sweep, "run", lambda *a, **k: pytest.fail("trained"))
    argv = ["sweep", *grid, "--grid", "gae_lambda=1.5", "--num-seeds", "1", "--total-steps", "512",
            "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == "purejaxvpg: error: sweep: --grid gae_lambda: must be in [0, 1], got 1.5.\n"
    assert not (tmp_path / "out").exists()
    checked = []
    sweep.grid_settings(BASE, sweep.parse_grid(grid[1::2]), lambda done, total: checked.append((done, total)))
    assert checked == [(10_000, 20_000), (20_000, 20_000)]


def test_a_sweep_reports_its_compile_and_every_chunk(capsys):
    calls = []
    result = sweep.run(BASE, SETTINGS, num_seeds=2, seed=3, reps=50, chunk_size=2,
                       on_chunk=lambda done, total, seconds: calls.append((done, total)))
    assert calls == [(0, 4), (2, 4), (4, 4)] and result.final_scores.shape == (2, 2)


def test_each_setting_is_written_as_a_run_directory_of_its_curves(swept, tmp_path):
    from purejaxvpg.host import rundir
    from purejaxvpg.tools import export

    swept.write(tmp_path / "sw")
    alone = pjv.train(dataclasses.replace(BASE, **SETTINGS[1]), num_seeds=2, seed=3)  # independent of the sweep
    config, run = rundir.read_config(tmp_path / "sw" / "settings" / "001")
    assert config == dataclasses.replace(BASE, **SETTINGS[1]) and run["seed"] == 3 and run["num_seeds"] == 2
    with np.load(tmp_path / "sw" / "settings" / "001" / "metrics.npz") as data:
        for name, values in alone.metrics.items():
            np.testing.assert_allclose(data[name], values, rtol=2e-4, atol=2e-4, err_msg=name)
        np.testing.assert_allclose(data["final_eval_return_greedy"], alone.final_eval["eval_return_greedy"],
                                   rtol=2e-4)
    runs = export.load_runs(tmp_path / "sw", "g")
    assert [r.label for r in runs] == ["g[policy_lr=0.001,value_iters=10,gamma=0.99]",
                                       "g[policy_lr=0.005,value_iters=3,gamma=0.9]"]


def test_plot_compare_and_export_read_a_sweep_as_its_settings(swept, tmp_path, capsys):
    swept.write(tmp_path / "sw")
    assert cli.main(["compare", str(tmp_path / "sw"), "--reps", "50"]) == 0
    printed = capsys.readouterr().out
    assert "P(sw[policy_lr=0.005,value_iters=3,gamma=0.9] > sw[policy_lr=0.001,value_iters=10,gamma=0.99])" in printed
    assert cli.main(["export", str(tmp_path / "sw"), "--format", "csv", "--metric", "episode_return",
                     "--out", str(tmp_path / "sw.csv")]) == 0
    lines = (tmp_path / "sw.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 2 * BASE.num_updates  # 2 settings x 2 seeds x every update
    # by default, each setting's final greedy evaluation: one point per seed, the sweep's own numbers
    assert cli.main(["export", str(tmp_path / "sw"), "--format", "csv", "--out", str(tmp_path / "final.csv")]) == 0
    rows = [line.split(",") for line in (tmp_path / "final.csv").read_text().splitlines()[1:]]
    assert {row[-3] for row in rows} == {"eval_return_greedy"} and len(rows) == 2 * 2
    np.testing.assert_allclose(sorted(float(row[-2]) for row in rows), sorted(swept.final_scores.reshape(-1)),
                               rtol=1e-6)
    assert cli.main(["plot", str(tmp_path / "sw"), "--out", str(tmp_path / "sw.png")]) == 0
    (tmp_path / "lone").mkdir()
    (tmp_path / "lone" / "sweep.json").write_text('{"settings": []}')
    assert cli.main(["plot", str(tmp_path / "lone"), "--out", str(tmp_path / "x.png")]) == 2
    assert "without its settings/ folder" in capsys.readouterr().err


def test_rank_auc_orders_settings_by_the_iqm_of_mean_returns(swept, tmp_path):
    from scipy import stats as sps

    by_area = dataclasses.replace(swept, rank_by="auc")
    curves = swept.result.metrics["episode_return"].reshape(len(SETTINGS), 2, -1)
    areas = [sps.trim_mean(c.mean(axis=1), 0.25) for c in curves]  # per seed: the mean over updates
    assert by_area.ranking() == sorted(range(len(SETTINGS)), key=lambda i: -areas[i])
    np.testing.assert_allclose(by_area.areas(), areas, rtol=1e-6)
    assert "(--rank auc)" in by_area.table()
