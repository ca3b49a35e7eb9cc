"""`purejaxvpg train` sets Config fields from flags, validates them and writes the run directory."""

import csv
import dataclasses
import json

import numpy as np
import pytest

import purejaxvpg as pjv
from purejaxvpg.tools import cli, flags
from purejaxvpg.tools.parser import build_parser


def test_every_config_field_is_a_documented_flag(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(pjv.Config):
        assert "--" + field.name.replace("_", "-") in text, field.name
    assert "about every tenth of the run" in " ".join(text.split())  # the checkpoint cadence


def test_flags_parse_into_config():
    parser_args = [
        "train", "--env-id", "Pendulum-v1", "--policy-lr", "0.01", "--hidden-sizes", "32,16",
        "--no-anneal-lr", "--max-grad-norm", "none", "--value-iters", "3",
    ]
    import argparse

    parser = argparse.ArgumentParser()
    flags.add_config_flags(parser)
    args = parser.parse_args(parser_args[1:])
    config = flags.config_from_args(args)
    assert config == pjv.Config(
        env_id="Pendulum-v1", policy_lr=0.01, hidden_sizes=(32, 16), anneal_lr=False,
        max_grad_norm=None, value_iters=3,
    )


def test_bad_flag_value_is_a_clear_error(capsys):
    assert cli.main(["train", "--gamma", "1.5"]) == 2
    assert "gamma: must be in [0, 1]" in capsys.readouterr().err


TINY = ["--num-seeds", "2", "--total-steps", "1024", "--num-envs", "4", "--num-steps", "64",
        "--eval-every", "2", "--eval-episodes", "2", "--checkpoint-every", "2", "--log-every", "2"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert cli.main(["train", *TINY, "--out", str(out)]) == 0
    return out


def test_train_writes_the_whole_run_directory(run_dir):
    info = json.loads((run_dir / "config.json").read_text())
    assert info["config"]["total_steps"] == 1024 and info["run"]["num_seeds"] == 2
    assert info["versions"]["jax"] and info["versions"]["purejaxvpg"]
    assert info["backend"] == "cpu" and info["device"] and "git_commit" in info
    assert info["results"]["updates_done"] == 4
    with open(run_dir / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 4  # seeds x updates, long format
    assert list(rows[0])[:3] == ["seed", "update", "env_steps"]
    assert set(pjv.METRIC_NAMES) <= set(rows[0])
    assert [int(r["env_steps"]) for r in rows[:4]] == [256, 512, 768, 1024]
    with np.load(run_dir / "metrics.npz") as data:
        assert data["episode_return"].shape == (2, 4)
        assert data["eval_return_greedy"].shape == (2, 2)
        np.testing.assert_array_equal(data["eval_env_steps"], [512, 1024])
        # the csv and the npz hold the same numbers
        np.testing.assert_allclose([float(r["episode_return"]) for r in rows[:4]],
                                   data["episode_return"][0], rtol=1e-6)
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir())[-1] == "4"


def test_train_prints_progress_and_a_summary(tmp_path, capsys):
    assert cli.main(["train", *TINY, "--out", str(tmp_path / "r"), "--eval-every", "0"]) == 0
    captured = capsys.readouterr()
    assert "100%" in captured.err  # the progress bar, on stderr
    assert "final greedy eval return: IQM [95% CI]" in captured.out and "compile time" in captured.out


def test_train_refuses_to_overwrite_a_run(run_dir, capsys):
    assert cli.main(["train", *TINY, "--out", str(run_dir)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_of_a_finished_run_keeps_its_metrics(run_dir, tmp_path):
    before = (run_dir / "metrics.csv").read_text()
    assert cli.main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert (run_dir / "metrics.csv").read_text() == before


def test_eval_reports_greedy_and_stochastic(run_dir, capsys):
    assert cli.main(["eval", str(run_dir), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "greedy: iqm" in out and "stochastic: iqm" in out
    record = json.loads((run_dir / "eval.json").read_text())
    assert len(record["greedy"]["return_per_seed"]) == 2
    assert record["updates_done"] == 4 and record["episodes_per_seed"] == 3
    # CartPole pays 1 per step: the mean return is the mean episode length
    np.testing.assert_allclose(np.mean(record["greedy"]["return_per_seed"]), record["greedy"]["mean_length"], rtol=1e-5)
    assert record["max_steps"] == 500  # CartPole-v1's time limit
    # --max-steps cuts each episode there: a length of at most 3, and the return with it
    assert cli.main(["eval", str(run_dir), "--episodes", "3", "--max-steps", "3"]) == 0
    cut = json.loads((run_dir / "eval.json").read_text())
    assert cut["max_steps"] == 3 and cut["greedy"]["mean_length"] <= 3 and max(cut["greedy"]["return_per_seed"]) <= 3
    assert cli.main(["eval", str(run_dir), "--max-steps", "-1"]) == 2
    assert "max_steps: must be an integer >= 0 and <= 100000, got -1" in capsys.readouterr().err
    assert cli.main(["eval", str(run_dir), "--episodes", "3", "--max-steps", "0"]) == 0  # 0: as eval_max_steps
    assert json.loads((run_dir / "eval.json").read_text())["max_steps"] == 500


def test_toml_config_with_flags_overriding_it(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('env_id = "Acrobot-v1"\nhidden_sizes = [32, 32]\npolicy_lr = 0.002\nmax_grad_norm = "none"\n')
    args = build_parser().parse_args(["train", "--config", str(path), "--policy-lr", "0.005"])
    config = flags.config_from_args(args)
    assert config == pjv.Config(env_id="Acrobot-v1", hidden_sizes=(32, 32), policy_lr=0.005, max_grad_norm=None)


def test_toml_unknown_key_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_text("polcy_lr = 0.002\n")
    assert cli.main(["train", "--config", str(path)]) == 2
    assert "polcy_lr" in capsys.readouterr().err


def test_preset_flag_starts_from_the_shipped_config():
    args = build_parser().parse_args(["train", "--preset", "--env-id", "Pendulum-v1", "--num-envs", "4"])
    config = flags.config_from_args(args)
    assert config == pjv.Config.preset("Pendulum-v1", num_envs=4)
    assert config.total_steps == pjv.Config.preset("Pendulum-v1").total_steps != pjv.Config().total_steps


@pytest.mark.parametrize("argv, message", [
    (["train", "--nosuch", "3"], "unrecognized arguments: --nosuch 3 (`purejaxvpg train --help` lists what it takes)"),
    (["train", "--num-seeds", "abc"], "argument --num-seeds: invalid int value: 'abc' (`purejaxvpg train --help`"),
    (["evl"], "argument command: invalid choice: 'evl'"),
    (["eval"], "the following arguments are required: run_dir (`purejaxvpg eval --help`"),
])
def test_a_flag_argparse_refuses_is_one_line_naming_the_help_to_read(argv, message, capsys):
    """Not argparse's usage block (34 lines for train) before its message."""
    try:
        code = cli.main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("purejaxvpg: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1, err
