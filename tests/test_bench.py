"""The throughput harness records what it promises (timings are never asserted), and the
loop-aware FLOP counter it uses (purejaxvpg.tools.flops) counts like a hand count."""

import ast
import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import purejaxvpg as pjv
from purejaxvpg.tools import bench, cli, flops, hardware
from purejaxvpg.tools.parser import build_parser

ESTIMATE_FIELDS = ("flops_per_env_step", "compute_bound_env_steps_per_second", "fraction_of_compute_bound")


def _hardware_slug() -> str:
    return hardware.hardware_name(hardware.hardware())


@pytest.fixture(scope="module")
def bench_record(tmp_path_factory, tiny_config):
    """One `purejaxvpg bench` of a tiny scenario at 1 and 2 seeds (a small matmul for the peak)."""
    out = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(bench.SCENARIOS, "tiny", tiny_config)
        mp.setattr(hardware, "default_matmul_size", lambda: 256)
        assert cli.main(["bench", "--scenario", "tiny", "--num-seeds", "1,2", "--out", str(out)]) == 0
    files = list(out.glob("*-throughput.json"))
    assert len(files) == 1
    return files[0], json.loads(files[0].read_text())


def test_measure_records_every_field(bench_record):
    point = bench_record[1]["runs"][0]["points"][1]  # bench.measure(tiny_config, num_seeds=2)
    for field in (
        "compile_seconds", "run_seconds", "env_steps_per_second", "final_return_mean", "peak_device_bytes",
        "xla_flops_per_env_step_loop_bodies_once", *ESTIMATE_FIELDS,
    ):
        assert field in point, field
    assert point["run_seconds"] > 0 and point["num_seeds"] == 2


def test_points_that_cannot_fit_are_skipped_not_crashed():
    huge = pjv.Config(num_envs=4096, num_steps=1024, total_steps=4096 * 1024)
    assert "skipped" in bench.measure(huge, num_seeds=10_000)


def test_bench_command_writes_json_named_after_hardware(bench_record, tiny_config):
    path, record = bench_record
    assert path.name == f"{_hardware_slug()}-tiny-throughput.json"  # a subset of scenarios
    assert record["hardware"]["backend"] and record["runs"][0]["scenario"] == "tiny"
    assert [p["num_seeds"] for p in record["runs"][0]["points"]] == [1, 2]
    assert record["runs"][0]["config"]["num_envs"] == tiny_config.num_envs


def test_bench_record_sets_every_point_against_the_compute_bound(bench_record):
    record = bench_record[1]
    peak = record["matmul_peak"]
    assert peak["n"] == 256 and peak["flops_per_second"] == pytest.approx(2 * 256**3 / peak["seconds_median"])
    assert peak["flops_per_second"] == max(peak["samples_flops_per_second"])  # before and after
    assert peak["xla_flops_over_2n3"] == 1.0 and record["flops_source"] == "compiled"  # on the CPU
    run = record["runs"][0]
    assert run["flops_per_env_step"] == run["flops_per_env_step_compiled"]
    assert run["flops_per_env_step_before_optimisation"] == pytest.approx(run["flops_per_env_step"], rel=0.05)
    for point in run["points"]:
        assert point["flops_per_env_step"] == run["flops_per_env_step"] > 0
        bound = peak["flops_per_second"] / point["flops_per_env_step"]
        assert point["compute_bound_env_steps_per_second"] == pytest.approx(bound)
        assert point["fraction_of_compute_bound"] == pytest.approx(point["env_steps_per_second"] / bound)
        # XLA's own figure counts each loop body once: far below the loop-aware count
        assert point["xla_flops_per_env_step_loop_bodies_once"] < point["flops_per_env_step"] / 10


@pytest.mark.parametrize("flops_per_step", [0.0, -3.0, None])
def test_a_backend_without_a_flop_count_gets_no_estimate_and_no_crash(flops_per_step):
    # jax 0.11.2 on an H200: XLA's cost analysis counted 0 FLOPs, and the bench divided by it
    point = bench.compute_bound({"env_steps_per_second": 1e6}, flops_per_step, 3e14)
    assert "compute_bound_env_steps_per_second" not in point and "cost analysis" in point["compute_bound_unavailable"]


def test_xla_flops_of_a_matmul_is_2mnk():
    m, k, n = 64, 32, 16
    assert flops.xla_flops(jnp.matmul, jnp.ones((m, k)), jnp.ones((k, n))) == 2 * m * n * k


def test_xla_flops_do_not_depend_on_the_backend_optimisation_level():
    def mlp(x, w1, w2):
        return jnp.tanh(x @ w1 + 1.0) @ w2

    args = (jnp.ones((64, 8)), jnp.ones((8, 32)), jnp.ones((32, 4)))
    default = flops.flops_of(jax.jit(mlp).lower(*args).compile())  # what bench.measure compiles
    assert flops.xla_flops(mlp, *args) == default >= 2 * 64 * (8 * 32 + 32 * 4)


def test_loop_aware_flops_multiply_every_loop_body_by_its_trip_count():
    w = jnp.ones((32, 32))
    one = 2 * 8 * 32 * 32  # flops of one (8, 32) @ (32, 32)

    def f(x):
        def inner(c, _):
            return c @ w, None

        def outer(c, _):
            return jax.lax.scan(inner, c, None, length=3)[0] @ w, None

        x = jax.jit(lambda x: jax.lax.scan(outer, x @ w, None, length=5)[0])(x)  # in a jit call; a matmul
        x = jax.lax.scan(inner, x, None, length=0)[0]  # deleted by XLA: 0 flops
        return jax.lax.scan(inner, x, None, length=1)[0]  # inlined by XLA: 1 matmul

    x = jnp.ones((8, 32))
    count = flops.loop_aware_flops(f, x)
    assert count.flops == (1 + 5 * (3 + 1) + 1) * one and count.while_loops_counted_once == 0
    # what flops.py's docstring says of this jax: each loop body once, loops of 0 trips gone:
    # 1 + (1 + 1) + 1 of the 22 matmuls, and the loop counters
    assert 4 * one <= flops.xla_flops(f, x) < 5 * one


def test_while_loops_of_unknown_trip_count_are_counted_once_and_said_so():
    w = jnp.ones((32, 32))
    one = 2 * 8 * 32 * 32

    def f(x, n):  # traced bounds: a while loop, not a scan
        return jax.lax.fori_loop(0, n, lambda i, c: c @ w, x)

    count = flops.loop_aware_flops(f, jnp.ones((8, 32)), 5)
    assert count.while_loops_counted_once == 1
    assert one <= count.flops < 1.1 * one  # one matmul and the loop counter's few scalar ops


def test_the_flop_counter_is_a_general_tool():
    """flops.py counts any function: it imports nothing from purejaxvpg."""
    tree = ast.parse(Path(flops.__file__).read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    assert imported and not [m for m in imported if m.split(".")[0] == "purejaxvpg"]


def test_flops_per_env_step_of_the_mlp_match_a_hand_count():
    """Wide hidden layers, so the matmuls dominate; many updates, so the init is noise.

    Matmul FLOPs per env step (2 per multiply-add), layers d -> h -> h -> out, h^2 terms:
    rollout actor forward 2h^2; critic on s and s' 4h^2; policy step forward, weight grads
    and input grads 6h^2, then the approx-KL forward with the new parameters 2h^2; one
    value step 6h^2: 20h^2. The d x h and h x out layers (d = 4, a = 2 actions) add
    rollout 2(dh + ha) + critic 4(dh + h) + policy 3 * 2(dh + ha) + 2ha + KL 2(dh + ha)
    + value 2 * 2(dh + h) + 2h = 94h. The rest (env step, activations, Adam over ~2h^2
    parameters per 128-step batch) is a few percent more.
    """
    h = 256
    config = pjv.Config(
        env_id="CartPole-v1", num_envs=4, num_steps=32, total_steps=4 * 32 * 1000, value_iters=1,
        hidden_sizes=(h, h),
    )
    hand = 20 * h * h + 94 * h
    assert hand <= bench.flops_per_env_step(config) <= 1.05 * hand


def test_reference_scenario_is_the_design_config():
    ref = bench.SCENARIOS["cartpole-500k"]
    assert (ref.env_id, ref.num_envs, ref.num_steps, ref.total_steps) == ("CartPole-v1", 4, 128, 500_000)
    assert ref.hidden_sizes == (64, 64) and ref.value_iters == 1


def test_wide_scenario_is_the_reference_config_with_64_envs():
    wide, ref = bench.SCENARIOS["wide"], bench.SCENARIOS["cartpole-500k"]
    assert wide.num_envs == 64 and dataclasses.replace(wide, num_envs=ref.num_envs) == ref


def test_optimisation_variants_set_the_loop_knobs():
    from benchmarks import optimisations

    base = bench.SCENARIOS["cartpole-500k"]
    assert optimisations.variant(base, "baseline") == base
    both = optimisations.variant(base, "assoc+unroll8")
    assert (both.scan_unroll, both.gae_method) == (8, "associative")
    assert both.num_envs == base.num_envs and both.value_iters == base.value_iters
    with pytest.raises(ValueError, match="unknown 'fused'"):
        optimisations.variant(base, "fused")


@pytest.mark.parametrize("seeds", ["-1", "1,x", "2.5", "", "0,4"])
def test_bench_refuses_bad_seed_counts_by_name(seeds, capsys, monkeypatch):
    monkeypatch.setattr(bench, "matmul_peak", _no_work)
    assert cli.main(["bench", "--scenario", "defaults", f"--num-seeds={seeds}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("purejaxvpg: error: num_seeds: expected comma-separated integers >= 1")


def _no_work(*args, **kwargs):
    raise AssertionError("measured before checking its arguments")


def test_bench_out_that_is_a_file_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "matmul_peak", _no_work)
    (tmp_path / "f").write_text("x")
    out = str(tmp_path / "f")
    assert cli.main(["bench", "--scenario", "defaults", "--num-seeds", "1", "--out", out]) == 2
    assert "out: " + out + " is a file" in capsys.readouterr().err


def test_bench_with_every_point_skipped_writes_nothing(tmp_path, capsys, monkeypatch):
    """Committed results are never overwritten by a run that measured nothing."""
    huge = pjv.Config(num_envs=4096, num_steps=1024, total_steps=4096 * 1024)
    monkeypatch.setitem(bench.SCENARIOS, "huge", huge)
    monkeypatch.setattr(bench, "matmul_peak", _no_work)
    committed = tmp_path / f"{_hardware_slug()}-huge-throughput.json"
    committed.write_text('{"committed": true}\n')
    assert cli.main(["bench", "--scenario", "huge", "--num-seeds", "100000", "--out", str(tmp_path)]) == 2
    assert "nothing written" in capsys.readouterr().err
    assert committed.read_text() == '{"committed": true}\n'


def test_results_json_never_holds_nan(bench_record):
    json.loads(bench_record[0].read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def test_bench_refuses_an_unknown_scenario_by_name(capsys, monkeypatch):
    monkeypatch.setattr(bench, "matmul_peak", _no_work)
    assert cli.main(["bench", "--scenario", "cartpole-500k", "--scenario", "nope", "--num-seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert "scenario: unknown ['nope']; allowed: ['cartpole-500k', 'defaults', 'wide', 'smoke']" in err


def test_bench_preset_flag_is_a_hidden_alias_of_scenario(capsys):
    """Commands written before the rename (README, results JSON) still run."""
    old = build_parser().parse_args(["bench", "--preset", "wide", "--scenario", "defaults"])
    assert old.scenario == ["wide", "defaults"]
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    bench_help = capsys.readouterr().out
    assert "--scenario" in bench_help and "--preset" not in bench_help


def test_old_results_files_still_read(tmp_path):
    """Results written before the rename name each run's scenario "preset"; the committed
    file is read back by json, and plotted as a new one is."""
    results = Path(__file__).parents[1] / "benchmarks" / "results"
    old = json.loads((results / "cpu-2core-wide-cartpole-500k-throughput.json").read_text())
    assert "preset" in old["runs"][0] and "scenario" not in old["runs"][0]
    assert [bench.scenario_of(run) for run in old["runs"]] == ["wide", "cartpole-500k"]
    pytest.importorskip("matplotlib")
    bench.plot(old, tmp_path / "old.png", log=lambda _: None)
    assert (tmp_path / "old.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
