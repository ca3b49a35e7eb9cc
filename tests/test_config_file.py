"""Configs round trip: `--config` reads TOML, a run's config.json or its run directory, and
`purejaxvpg config RUN_DIR` writes TOML that `--config` reads back to an equal Config."""

import dataclasses
import json

import pytest

import purejaxvpg as pjv
from purejaxvpg.host import rundir
from purejaxvpg.presets import PRESETS
from purejaxvpg.tools import cli, config_file, flags
from purejaxvpg.tools.parser import build_parser

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def _from_file(path, *flags_after):
    return flags.config_from_args(build_parser().parse_args(["train", "--config", str(path), *flags_after]))


def _plain(config: pjv.Config) -> dict:
    """The fields as TOML holds them, written independently of config_file: lists for tuples,
    a table for env_params, "none" for no clipping."""
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
    values["env_params"] = {k: v for k, v in config.env_params}
    if not values["env_params"]:
        del values["env_params"]
    if values["max_grad_norm"] is None:
        values["max_grad_norm"] = "none"
    return values


@pytest.mark.parametrize("env_id", sorted(PRESETS))
def test_every_preset_round_trips_through_toml(env_id, tmp_path):
    config = pjv.Config.preset(env_id)
    text = config_file.to_toml(config, header="a header\nof two lines")
    assert tomllib.loads(text) == _plain(config)  # valid TOML holding exactly the fields
    path = tmp_path / "run.toml"
    path.write_text(text)
    assert _from_file(path) == config


def test_awkward_values_round_trip(tmp_path):
    config = pjv.Config(env_id="Pendulum-v1", policy_lr=1.23456789e-4, ent_coef=1e-10, gamma=0.99999,
                        max_grad_norm=None, hidden_sizes=(7,),
                        env_params=(("max_speed", 8.5), ("odd key", 2), ("flag", True)))
    path = tmp_path / "run.toml"
    path.write_text(config_file.to_toml(config))
    assert _from_file(path) == config
    assert tomllib.loads(path.read_text())["env_params"] == {"max_speed": 8.5, "odd key": 2, "flag": True}


def test_a_runs_config_json_and_its_directory_feed_back(tmp_path):
    config = pjv.Config(env_id="Acrobot-v1", hidden_sizes=(32, 16), value_iters=3, max_grad_norm=None,
                        env_params=(("max_steps_in_episode", 200),))
    run = tmp_path / "run"
    run.mkdir()
    rundir.write_config(run, config, {"num_seeds": 4, "seed": 0})
    assert _from_file(run / "config.json") == config
    assert _from_file(run) == config
    assert _from_file(run, "--policy-lr", "0.005") == dataclasses.replace(config, policy_lr=0.005)
    args = build_parser().parse_args(["train", "--config", str(run / "config.json"), "--seed", "7"])
    assert flags.config_from_args(args) == config and args.seed == 7


def test_config_command_prints_toml_that_config_reads_back(tmp_path, capsys):
    config = pjv.Config.preset("craftax/Craftax-Classic-Symbolic-v1", policy_lr=2e-4)
    run = tmp_path / "run"
    run.mkdir()
    rundir.write_config(run, config, {"num_seeds": 1})
    assert cli.main(["config", str(run)]) == 0
    toml_path = tmp_path / "again.toml"
    toml_path.write_text(capsys.readouterr().out)
    assert _from_file(toml_path) == config
    assert cli.main(["config", str(run), "--format", "json"]) == 0
    assert pjv.Config.from_dict(json.loads(capsys.readouterr().out)) == config
    assert cli.main(["config", str(toml_path), "--out", str(tmp_path / "copy.toml")]) == 0
    assert _from_file(tmp_path / "copy.toml") == config
    assert cli.main(["config", str(run), "--out", str(tmp_path / "copy.toml")]) == 2  # never replaced
    assert "copy.toml exists" in capsys.readouterr().err


@pytest.mark.parametrize("content, name, message", [
    (None, "missing.json", "no such file"),
    ("[1, 2]", "list.json", "not an object of Config fields"),
    ("{nope", "bad.json", "is not valid JSON"),
    ("a = [", "bad.toml", "is not valid TOML"),
    ('{"config": {"polcy_lr": 1}}', "config.json", "polcy_lr"),
])
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert cli.main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert cli.main(["config", str(tmp_path / "empty")]) == 2  # a directory without config.json
    assert "without config.json" in capsys.readouterr().err


def test_train_from_a_runs_config_json_reproduces_its_config(tmp_path):
    tiny = ["--env-id", "CartPole-v1", "--num-seeds", "1", "--total-steps", "256", "--num-envs", "2",
            "--num-steps", "32", "--hidden-sizes", "8", "--no-progress"]
    assert cli.main(["train", *tiny, "--out", str(tmp_path / "a")]) == 0
    assert cli.main(["train", "--config", str(tmp_path / "a" / "config.json"), "--seed", "7", "--no-progress",
                     "--num-seeds", "1", "--out", str(tmp_path / "b")]) == 0
    first, _ = rundir.read_config(tmp_path / "a")
    second, run = rundir.read_config(tmp_path / "b")
    assert second == first and run["seed"] == 7
