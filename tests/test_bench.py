"""The throughput harness records what it promises (timings are never asserted)."""

import json

import purejaxvpg as pjv
from purejaxvpg import bench, cli


def test_measure_records_every_field(tiny_config):
    point = bench.measure(tiny_config, num_seeds=2)
    for field in ("compile_seconds", "run_seconds", "env_steps_per_second", "final_return_mean", "peak_device_bytes"):
        assert field in point, field
    assert point["run_seconds"] > 0 and point["num_seeds"] == 2


def test_points_that_cannot_fit_are_skipped_not_crashed():
    huge = pjv.Config(num_envs=4096, num_steps=1024, total_steps=4096 * 1024)
    assert "skipped" in bench.measure(huge, num_seeds=10_000)


def test_bench_command_writes_json_named_after_hardware(tmp_path, monkeypatch, tiny_config):
    monkeypatch.setitem(bench.PRESETS, "tiny", tiny_config)
    assert cli.main(["bench", "--preset", "tiny", "--num-seeds", "1,2", "--out", str(tmp_path)]) == 0
    files = list(tmp_path.glob("*-throughput.json"))
    assert len(files) == 1 and files[0].name.startswith(bench.hardware_name(bench.hardware()))
    record = json.loads(files[0].read_text())
    assert record["hardware"]["backend"] and record["runs"][0]["preset"] == "tiny"
    assert [p["num_seeds"] for p in record["runs"][0]["points"]] == [1, 2]
    assert record["runs"][0]["config"]["num_envs"] == tiny_config.num_envs


def test_reference_preset_is_the_design_config():
    ref = bench.PRESETS["cartpole-500k"]
    assert (ref.env_id, ref.num_envs, ref.num_steps, ref.total_steps) == ("CartPole-v1", 4, 128, 500_000)
    assert ref.hidden_sizes == (64, 64) and ref.value_iters == 1
