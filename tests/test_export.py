"""`purejaxvpg export`: rliable's score arrays and the long table, checked against each run's
metrics.npz read back with numpy and the CSV read back with pandas."""

import dataclasses
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from test_cli import TINY  # tests/ is on sys.path (pytest's default import mode)

import purejaxvpg as pjv
from purejaxvpg.host import rundir, runlock
from purejaxvpg.report import stats
from purejaxvpg.tools import cli

ROOT = Path(__file__).resolve().parents[1]
UPDATES = 6  # conftest's tiny_config


def write_run(path, result, env_id, seeds, poison=None, updates=slice(None)):
    """A run directory written with rundir's own functions from some seeds (and updates) of `result`."""
    part = types.SimpleNamespace(
        metrics={k: np.array(v[seeds, updates]) for k, v in result.metrics.items()},
        eval_metrics={k: v[seeds] for k, v in result.eval_metrics.items()},
        eval_env_steps=result.eval_env_steps,
        final_eval={},  # runs without a final evaluation: the default metric is episode_return
    )
    if poison is not None:  # a diverged seed: non-finite losses from update 2 on
        part.metrics["policy_loss"][poison, 2:] = np.nan
    path.mkdir()
    rundir.write_config(path, dataclasses.replace(result.config, env_id=env_id),
                        {"num_seeds": len(part.metrics["env_steps"])})
    rundir.write_metrics(path, part)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_result):
    """Run directories from slices of conftest's tiny training (8 CartPole seeds, 6 updates,
    no evaluations; shared with other test files, so no compile of its own). The exporter
    only reads files, so the "Acrobot-v1" runs hold other seeds of the same training under
    that env id: two tasks without a second compile."""
    root = tmp_path_factory.mktemp("export")
    return types.SimpleNamespace(
        root=root,
        cart_a=write_run(root / "cart_a", tiny_result, "CartPole-v1", slice(0, 4)),
        acro_a=write_run(root / "acro_a", tiny_result, "Acrobot-v1", slice(4, 8)),
        cart_b=write_run(root / "cart_b", tiny_result, "CartPole-v1", slice(2, 6)),
        acro_b=write_run(root / "acro_b", tiny_result, "Acrobot-v1", slice(1, 5)),
        acro_3=write_run(root / "acro_3", tiny_result, "Acrobot-v1", slice(0, 3)),
        acro_short=write_run(root / "acro_short", tiny_result, "Acrobot-v1", slice(4, 8), updates=slice(4)),
        diverged=write_run(root / "diverged", tiny_result, "CartPole-v1", slice(0, 4), poison=1),
    )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A run with evaluations (2 seeds, 4 updates, evaluated after updates 2 and 4) trained
    by the CLI with test_cli's flags: in one pytest process it reuses that module's compiled
    program (driver.compile_blocks is cached), so it costs no compile in the suite."""
    out = tmp_path_factory.mktemp("evaluated") / "run"
    assert cli.main(["train", *TINY, "--out", str(out), "--no-progress"]) == 0
    return out


def npz(path) -> dict:
    with np.load(Path(path) / "metrics.npz") as data:
        return {name: data[name] for name in data.files}


def iqm_by_definition(x) -> float:
    """Sort, cut int(n / 4) from each end, average the rest (Agarwal et al. 2021)."""
    x = np.sort(np.ravel(x))
    cut = len(x) // 4
    return float(x[cut: len(x) - cut].mean())


def labelled(runs, *names):
    """vpg=cart_a vpg=acro_a other=cart_b other=acro_b: two algorithms on two tasks."""
    return [f"{label}={getattr(runs, name)}" for label, name in zip(("vpg", "vpg", "other", "other"), names)]


def test_rliable_final_scores_are_each_seeds_last_update(runs, tmp_path, capsys):
    out = tmp_path / "scores.npz"
    args = labelled(runs, "cart_a", "acro_a", "cart_b", "acro_b")
    assert cli.main(["export", *args, "--format", "rliable", "--out", str(out)]) == 0
    info = json.loads((tmp_path / "scores.json").read_text())
    assert info["tasks"] == ["Acrobot-v1", "CartPole-v1"] and info["algorithms"] == ["vpg", "other"]
    assert info["metric"] == "episode_return" and info["shape"] == ["num_runs", "num_tasks"]
    with np.load(out) as data:  # what rliable's get_interval_estimates takes
        score_dict = {name: data[name] for name in data.files}
    assert list(score_dict) == ["vpg", "other"]
    for label, (cart, acro) in (("vpg", (runs.cart_a, runs.acro_a)), ("other", (runs.cart_b, runs.acro_b))):
        final = {task: npz(path)["episode_return"][:, -1]
                 for task, path in (("CartPole-v1", cart), ("Acrobot-v1", acro))}
        assert score_dict[label].shape == (4, 2)  # [num_runs = seeds, num_tasks]
        for column, task in enumerate(info["tasks"]):
            np.testing.assert_array_equal(score_dict[label][:, column], final[task])
            assert info["env_steps"][label][task] == 4 * 32 * UPDATES
        # rliable's IQM of the exported array == our stats.iqm of the same seeds
        same_seeds = np.concatenate(list(final.values()))
        assert iqm_by_definition(score_dict[label]) == pytest.approx(stats.iqm(same_seeds), rel=1e-12)


def test_rliable_curves_are_runs_by_tasks_by_points(runs, tmp_path):
    out = tmp_path / "curves.npz"
    assert cli.main(["export", f"vpg={runs.cart_a}", f"vpg={runs.acro_a}", "--format", "rliable",
                     "--at", "all", "--out", str(out)]) == 0
    info = json.loads(out.with_suffix(".json").read_text())
    with np.load(out) as data:
        curves = data["vpg"]
    assert curves.shape == (4, 2, UPDATES) and info["shape"] == ["num_runs", "num_tasks", "num_points"]
    np.testing.assert_array_equal(curves[:, 0], npz(runs.acro_a)["episode_return"])  # tasks sorted
    np.testing.assert_array_equal(curves[:, 1], npz(runs.cart_a)["episode_return"])
    np.testing.assert_array_equal(info["env_steps"]["vpg"]["CartPole-v1"], npz(runs.cart_a)["env_steps"][0])


def test_rliable_evaluation_curves_are_at_the_evaluations(evaluated, tmp_path):
    out = tmp_path / "eval.npz"
    assert cli.main(["export", str(evaluated), "--format", "rliable", "--at", "all",
                     "--metric", "eval_return_stochastic", "--out", str(out)]) == 0
    data, info = npz(evaluated), json.loads(out.with_suffix(".json").read_text())
    with np.load(out) as scores:
        np.testing.assert_array_equal(scores["run"], data["eval_return_stochastic"][:, None, :])  # [2, 1, 2]
    assert info["env_steps"]["run"]["CartPole-v1"] == data["eval_env_steps"].tolist() == [512, 1024]


def test_long_csv_is_what_seaborn_groups(runs, evaluated, tmp_path):
    pandas = pytest.importorskip("pandas")
    out = tmp_path / "long.csv"
    assert cli.main(["export", str(evaluated), f"b={runs.acro_b}", "--format", "csv", "--out", str(out)]) == 0
    df = pandas.read_csv(out)
    assert list(df.columns) == ["run", "env_id", "seed", "update", "env_steps", "metric", "value", "diverged"]
    assert len(df) == 2 * 4 + 4 * UPDATES  # seeds x updates of each run
    assert set(zip(df.run, df.env_id)) == {("run", "CartPole-v1"), ("b", "Acrobot-v1")}
    assert set(df.metric) == {"episode_return"} and not df.diverged.any()
    for run, path in (("run", evaluated), ("b", runs.acro_b)):
        _check_seaborn_curve(df[df.run == run], npz(path), "episode_return", npz(path)["env_steps"][0])
    # evaluation metrics: rows at the evaluations' own env steps, after updates 2 and 4
    assert cli.main(["export", str(evaluated), "--format", "csv", "--out", str(tmp_path / "eval.csv"),
                     "--metric", "eval_return_greedy,eval_length_greedy"]) == 0
    df = pandas.read_csv(tmp_path / "eval.csv")
    for metric in ("eval_return_greedy", "eval_length_greedy"):
        rows = df[df.metric == metric]
        _check_seaborn_curve(rows, npz(evaluated), metric, [512, 1024])
        assert sorted(set(rows["update"])) == [1, 3]  # counted from 0, as in metrics.csv


def _check_seaborn_curve(rows, data, metric, env_steps):
    # sns.lineplot(data=rows, x="env_steps", y="value") averages the seeds at each x
    curve = rows.groupby("env_steps").value.mean()
    np.testing.assert_array_equal(curve.index, env_steps)
    np.testing.assert_allclose(curve.to_numpy(), data[metric].mean(axis=0), rtol=1e-6)
    # every value comes back exactly as the float32 it was
    wide = rows.pivot(index="seed", columns="update", values="value").to_numpy()
    np.testing.assert_array_equal(wide.astype(np.float32), data[metric])


def test_final_csv_on_stdout_has_every_metric_once_per_seed(runs, capsys):
    pandas = pytest.importorskip("pandas")
    import io

    argv = ["export", str(runs.diverged), "--format", "csv", "--metric", "all", "--at", "final"]
    assert cli.main(argv) == 0
    df = pandas.read_csv(io.StringIO(capsys.readouterr().out))
    names = set(pjv.METRIC_NAMES) - {"env_steps"}  # this run has no evaluations
    assert len(df) == 4 * len(names) and set(df.metric) == names
    data = npz(runs.diverged)
    assert df.groupby("seed").diverged.all().tolist() == [False, True, False, False]
    final = df[df.metric == "entropy"].sort_values("seed")
    np.testing.assert_array_equal(final.value.to_numpy(np.float32), data["entropy"][:, -1])
    assert (final["update"] == UPDATES - 1).all() and np.isnan(df[df.metric == "policy_loss"].value.iloc[1])


def test_seeds_config_json_lists_as_diverged_are_flagged(runs, tmp_path, capsys):
    """Non-finite final parameters show in config.json's results, not in the metrics."""
    path = write_run(tmp_path / "params_nan", types.SimpleNamespace(
        config=pjv.Config(env_id="CartPole-v1"), eval_env_steps=np.zeros(0), eval_metrics={}, final_eval={},
        metrics={k: v for k, v in npz(runs.cart_a).items() if k in pjv.METRIC_NAMES}), "CartPole-v1", slice(None))
    rundir.write_results(path, {"diverged": {"count": 1, "of": 4, "at_update": {"2": UPDATES - 1}}})
    assert cli.main(["export", str(path), "--format", "csv", "--at", "final"]) == 0
    assert [line.endswith("True") for line in capsys.readouterr().out.splitlines()[1:]] == [0, 0, 1, 0]
    assert cli.main(["export", str(path), "--format", "rliable", "--out", str(tmp_path / "s.npz")]) == 2
    assert "seeds [2] of" in capsys.readouterr().err


def test_parquet_needs_the_export_extra(runs, tmp_path, monkeypatch, capsys):
    extras = _pyproject()["project"]["optional-dependencies"]["export"]
    assert {"pandas", "pyarrow"} <= {name.split(">")[0].split("=")[0] for name in extras}
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    out = tmp_path / "m.parquet"
    assert cli.main(["export", str(runs.cart_a), "--format", "parquet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pyarrow" in err and "purejaxvpg[export]" in err and not out.exists()


def test_parquet_reads_back_like_the_csv(runs, tmp_path):
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    out = tmp_path / "m.parquet"
    assert cli.main(["export", str(runs.cart_a), "--format", "parquet", "--out", str(out)]) == 0
    df = pandas.read_parquet(out)
    assert list(df.columns) == ["run", "env_id", "seed", "update", "env_steps", "metric", "value", "diverged"]
    assert df.env_steps.dtype == np.int64 and df.diverged.dtype == bool and set(df.run) == {"cart_a"}
    np.testing.assert_array_equal(df.value.to_numpy().reshape(4, UPDATES), npz(runs.cart_a)["episode_return"])


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _interrupted(runs):
    path = runs.root / "interrupted"
    path.mkdir(exist_ok=True)
    (path / "config.json").write_text((runs.cart_a / "config.json").read_text())
    return path


REFUSALS = [
    (lambda r: [str(r.root / "nowhere"), "--format", "csv"], "does not exist"),
    (lambda r: [str(r.root), "--format", "csv"], "no config.json (not a purejaxvpg run directory)"),
    (lambda r: [str(_interrupted(r)), "--format", "csv"], "no metrics.npz yet: it was interrupted"),
    (lambda r: [str(r.cart_a), "--format", "csv", "--metric", "reward"],
     "metric: unknown reward; allowed: episode_return"),
    (lambda r: [str(r.cart_a), "--format", "xlsx"], "format: unknown 'xlsx'; allowed: rliable, csv, parquet"),
    (lambda r: [str(r.cart_a), "--format", "csv", "--at", "last"], "at: unknown 'last'; allowed: final, all"),
    (lambda r: [str(r.cart_a), "--format", "csv", "--metric", "eval_return_greedy"], "eval_every 0"),
    (lambda r: [str(r.cart_a), "--format", "rliable", "--metric", "entropy,episode_return"], "one metric"),
    (lambda r: [f"v={r.cart_a}", f"v={r.acro_3}", "--format", "rliable"], "different seed counts"),
    (lambda r: [f"v={r.cart_a}", str(r.acro_a), "--format", "rliable"], "'v' has no run of Acrobot-v1"),
    (lambda r: [f"v={r.cart_a}", f"v={r.acro_short}", "--format", "rliable", "--at", "all"],
     "curves of different lengths (Acrobot-v1: 4, CartPole-v1: 6)"),
    (lambda r: [f"v={r.cart_a}", f"v={r.cart_b}", "--format", "csv"], "are both 'v' on CartPole-v1"),
    (lambda r: [str(r.diverged), "--format", "rliable"], "seeds [1] of"),
    (lambda r: [str(r.cart_a), "--format", "rliable", "--out", "-"], "rliable is binary"),
    (lambda r: [str(r.cart_a), "--format", "rliable", "--out", "s.json"], "rliable scores are an .npz"),
]


@pytest.mark.parametrize("argv,message", REFUSALS, ids=[m[:24] for _, m in REFUSALS])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)  # default outputs would land here
    assert cli.main(["export", *argv(runs)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_run_still_training_is_named(runs, tmp_path, capsys):
    path = _interrupted(runs)
    lock = runlock.RunLock(path, create=False)  # as `purejaxvpg train` holds it
    try:
        assert cli.main(["export", str(path), "--format", "csv"]) == 2
    finally:
        lock.release()
    assert "it is still training (pid" in capsys.readouterr().err


def test_existing_out_is_kept_unless_force(runs, tmp_path, capsys):
    out = tmp_path / "scores.npz"
    out.write_bytes(b"mine")
    assert cli.main(["export", str(runs.cart_a), "--format", "rliable", "--out", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err and out.read_bytes() == b"mine"
    assert not out.with_suffix(".json").exists()
    assert cli.main(["export", str(runs.cart_a), "--format", "rliable", "--out", str(out), "--force"]) == 0
    with np.load(out) as data:
        np.testing.assert_array_equal(data["cart_a"][:, 0], npz(runs.cart_a)["episode_return"][:, -1])
    # the sidecar is guarded too: an rliable --out must be an .npz with room for its .json
    (tmp_path / "other.json").write_text("{}")
    other = tmp_path / "other.npz"
    assert cli.main(["export", str(runs.cart_a), "--format", "rliable", "--out", str(other)]) == 2
    assert "other.json exists" in capsys.readouterr().err


@pytest.mark.parametrize("format", ["csv", "rliable"])
def test_an_out_that_cannot_be_written_is_refused_before_the_work(runs, tmp_path, capsys, monkeypatch, format):
    """Under a file, or in a folder where no file can be made: one line naming --out, before
    any run is read, no temporary name in it and nothing left behind."""
    from purejaxvpg.tools import export

    monkeypatch.setattr(export, "load_run", lambda *a: pytest.fail("a run was read before --out was checked"))
    (tmp_path / "file").write_text("x")
    name = "scores.npz" if format == "rliable" else "table.csv"
    for out, reason in ((tmp_path / "file" / name, "lies under the file"),
                        (tmp_path / "file" / "deeper" / name, "lies under the file"),
                        (Path("/proc") / "sub" / name, "cannot write into")):
        assert cli.main(["export", str(runs.cart_a), "--format", format, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("purejaxvpg: error: out: ") and reason in err and ".tmp" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_failed_write_names_the_file_asked_for(tmp_path):
    from purejaxvpg.tools import export

    (tmp_path / "table.csv").mkdir()  # the final rename cannot replace a directory
    with pytest.raises(OSError, match=f"^could not write {tmp_path / 'table.csv'}: ") as error:
        with export._atomic(tmp_path / "table.csv") as handle:
            handle.write(b"x")
    assert ".tmp" not in str(error.value)
    assert not (tmp_path / "table.csv.tmp").exists()
