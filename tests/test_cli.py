"""`purejaxvpg train` sets Config fields from flags, validates them and writes the run directory."""

import csv
import dataclasses
import json

import pytest

import purejaxvpg as pjv
from purejaxvpg import cli


def test_every_config_field_is_a_documented_flag(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(pjv.Config):
        assert "--" + field.name.replace("_", "-") in text, field.name


def test_flags_parse_into_config():
    parser_args = [
        "train", "--env-id", "Pendulum-v1", "--policy-lr", "0.01", "--hidden-sizes", "32,16",
        "--no-anneal-lr", "--max-grad-norm", "none", "--value-iters", "3",
    ]
    import argparse

    parser = argparse.ArgumentParser()
    cli._add_config_flags(parser)
    args = parser.parse_args(parser_args[1:])
    config = cli.config_from_args(args)
    assert config == pjv.Config(
        env_id="Pendulum-v1", policy_lr=0.01, hidden_sizes=(32, 16), anneal_lr=False,
        max_grad_norm=None, value_iters=3,
    )


def test_bad_flag_value_is_a_clear_error(capsys):
    assert cli.main(["train", "--gamma", "1.5"]) == 2
    assert "gamma: must be in [0, 1]" in capsys.readouterr().err


def test_train_writes_config_and_metrics(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main([
        "train", "--num-seeds", "2", "--total-steps", "1024", "--num-envs", "4", "--num-steps", "64",
        "--out", str(out),
    ])
    assert code == 0
    assert "final return" in capsys.readouterr().out
    info = json.loads((out / "config.json").read_text())
    assert info["config"]["total_steps"] == 1024 and info["num_seeds"] == 2
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 4  # seeds x updates
    assert set(pjv.METRIC_NAMES) <= set(rows[0])
