"""Loggers at block boundaries: metrics.csv grows block by block and survives an interrupt
and a resume exactly; TensorBoard's event file and W&B's offline run, each read back with
an independent reader, hold the across-seed IQM / mean (and each seed) of the run's own
metrics.npz; a logger that fails warns once and the run finishes unchanged. (Over 300
lines: the two independent readers, TFRecord and W&B's record log, live here with their tests.)"""

import csv
import importlib.util
import shutil
import struct

import numpy as np
import pytest
from conftest import forbid_compiling
from test_cli import TINY

import purejaxvpg as pjv
from purejaxvpg.host import loggers, rundir, runlock, session
from purejaxvpg.tools import cli, flags
from purejaxvpg.tools.parser import build_parser

# test_cli's run (2 seeds, 4 updates in blocks of 2, an evaluation every 2): in one pytest
# process its program is compiled once for both files (driver.compile_blocks caches it)
FLAGS = [*TINY, "--no-progress"]
CONFIG = flags.config_from_args(build_parser().parse_args(["train", *FLAGS]))
OPTIONS = session.RunOptions(num_seeds=2, log_every=2, checkpoint_every=2, progress=False)
INSTALLED = [n for n, (module, _) in loggers.OPTIONAL.items() if importlib.util.find_spec(module)]


def iqm(x):
    """Interquartile mean across seeds (axis 0), from the definition: sort, cut a quarter
    of the runs from each end, average the rest."""
    x = np.sort(np.asarray(x, dtype=float), axis=0)
    cut = x.shape[0] // 4
    return x[cut:x.shape[0] - cut].mean(axis=0)


@pytest.fixture(scope="module")
def uninterrupted():
    return session.run(CONFIG, OPTIONS)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`purejaxvpg train --log tensorboard,wandb` (what is installed), W&B offline; seeds 3..4
    of the run (--seed-start 3), so every logger must name the global seeds."""
    tmp = tmp_path_factory.mktemp("loggers")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
            patch.setenv(name, str(tmp / "wandb-home"))
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_SILENT", "true")
        (tmp / "wandb-home").mkdir()
        assert cli.main(["train", *FLAGS, "--seed-start", "3", "--out", str(tmp / "run"),
                         "--log", ",".join(INSTALLED)]) == 0
    return tmp


def _session(run_dir, chosen, options=OPTIONS, **kwargs):
    """session.run with the loggers `chosen` wired in as the CLI wires them."""
    logs = loggers.Loggers(chosen)
    result = session.run(CONFIG, options, run_dir, on_start=lambda done: logs.start(CONFIG, {}, done),
                         on_block=logs.on_block, **kwargs)
    logs.finish(result)
    return result


def _csv(path, first_seed=0):
    """metrics.csv as name -> [num_seeds, updates] (rows put in place by seed and update),
    refusing a (seed, update) pair written twice; seeds numbered from first_seed."""
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    pairs = [(int(r["seed"]) - first_seed, int(r["update"])) for r in rows]
    assert len(set(pairs)) == len(pairs), "an update is in metrics.csv twice"
    assert min(p[0] for p in pairs) == 0, "seeds not numbered from the run's seed_start"
    seeds, updates = max(p[0] for p in pairs) + 1, max(p[1] for p in pairs) + 1
    assert len(pairs) == seeds * updates
    out = {name: np.full((seeds, updates), np.nan) for name in rows[0] if name not in ("seed", "update")}
    for (s, u), row in zip(pairs, rows):
        for name in out:
            out[name][s, u] = float(row[name])
    return out


def _assert_csv_holds(path, metrics, updates, first_seed=0):
    table = _csv(path, first_seed)
    assert table["env_steps"].shape == (OPTIONS.num_seeds, updates)
    for name in pjv.METRIC_NAMES:
        np.testing.assert_allclose(table[name], metrics[name][:, :updates], rtol=2e-6, err_msg=name)


# --- metrics.csv --------------------------------------------------------------------------

def test_metrics_csv_keeps_every_finished_block_and_a_resume_ends_like_an_uninterrupted_run(
    uninterrupted, tmp_path
):
    _session(tmp_path, [loggers.CsvLogger(tmp_path)], stop_after=2)  # interrupted after one block
    _assert_csv_holds(tmp_path / "metrics.csv", uninterrupted.metrics, 2)
    _session(tmp_path, [loggers.CsvLogger(tmp_path)], resume=True)
    _assert_csv_holds(tmp_path / "metrics.csv", uninterrupted.metrics, CONFIG.num_updates)
    # killed before its last checkpoint was written: the rows of updates 2, 3 are on disk, the state is not
    shutil.rmtree(tmp_path / "checkpoints" / str(CONFIG.num_updates))
    resumed = _session(tmp_path, [loggers.CsvLogger(tmp_path)], resume=True)
    assert resumed.updates_trained == CONFIG.num_updates - 2
    _assert_csv_holds(tmp_path / "metrics.csv", uninterrupted.metrics, CONFIG.num_updates)
    # the same lines the end of a CLI run writes whole (rundir.write_metrics), in block order
    (tmp_path / "whole").mkdir()
    rundir.write_metrics(tmp_path / "whole", uninterrupted)
    appended = (tmp_path / "metrics.csv").read_text().splitlines()
    whole = (tmp_path / "whole" / "metrics.csv").read_text().splitlines()
    assert appended[0] == whole[0] and sorted(appended[1:]) == sorted(whole[1:])


def test_resume_drops_rows_after_the_checkpoint_and_a_half_written_row(tmp_path):
    metrics = {n: np.arange(8.0).reshape(2, 4) + 0.25 for n in pjv.METRIC_NAMES}
    metrics["env_steps"] = np.tile(np.arange(1, 5) * 32, (2, 1))
    header, *rows = (rundir.csv_header(metrics) + rundir.csv_rows(metrics)).splitlines()
    (tmp_path / "metrics.csv").write_text("\n".join([header, *rows]) + "\n")
    loggers.CsvLogger(tmp_path).start(CONFIG, {}, 2)  # resumed from update 2: rows of 2, 3 go
    kept = [r for r in rows if int(r.split(",")[1]) < 2]
    assert (tmp_path / "metrics.csv").read_text().splitlines() == [header, *kept]
    # the logger failed mid-row (a full disk) and later blocks were checkpointed: that row goes too
    (tmp_path / "metrics.csv").write_text("\n".join([header, *kept[:-1], kept[-1][:-2]]))
    loggers.CsvLogger(tmp_path).start(CONFIG, {}, 4)
    with open(tmp_path / "metrics.csv") as handle:
        pairs = [(int(r["seed"]), int(r["update"])) for r in csv.DictReader(handle)]
    assert pairs == [(0, 0), (0, 1), (1, 0)]


def test_cli_metrics_csv_and_npz_agree(cli_run):
    with np.load(cli_run / "run" / "metrics.npz") as saved:
        _assert_csv_holds(cli_run / "run" / "metrics.csv", saved, CONFIG.num_updates, first_seed=3)
        assert list(saved["seed"]) == [3, 4]


# --- a failing logger ---------------------------------------------------------------------

class Broken(loggers.Logger):
    name = "broken"

    def __init__(self):
        self.calls = 0

    def log_block(self, block):
        self.calls += 1
        raise OSError("no space left on device")


def test_a_failing_logger_warns_once_and_the_run_finishes_unchanged(uninterrupted, tmp_path, capsys):
    broken = Broken()
    result = _session(tmp_path, [broken, loggers.CsvLogger(tmp_path)])
    err = capsys.readouterr().err
    assert err.count("warning: the broken logger failed") == 1, err
    assert "no space left on device" in err and "training goes on" in err and "Traceback" not in err
    assert broken.calls == 1  # switched off after its first failure
    for name in pjv.METRIC_NAMES:
        np.testing.assert_array_equal(result.metrics[name], uninterrupted.metrics[name], err_msg=name)
    _assert_csv_holds(tmp_path / "metrics.csv", uninterrupted.metrics, CONFIG.num_updates)  # others go on


def test_a_wandb_failure_in_its_sender_thread_warns_once(tmp_path, capsys, monkeypatch):
    """W&B logs from a thread (off the training loop): its first error still reaches the
    fan-out, which warns once and drops W&B."""
    wandb = pytest.importorskip("wandb")
    for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(name, str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logs = loggers.Loggers([loggers.WandbLogger(tmp_path)])
    logs.start(CONFIG, {}, 0)

    def refuse(*args, **kwargs):
        raise ConnectionError("wandb: network is unreachable")

    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "log", refuse)
    for done in (2, 4):
        logs.on_block(done, {"env_steps": np.tile(np.arange(done - 1, done + 1) * CONFIG.batch_size, (2, 1)),
                             "policy_loss": np.ones((2, 2))}, {})
    logs.finish(None)
    err = capsys.readouterr().err
    assert err.count("warning: the wandb logger failed") == 1 and "network is unreachable" in err, err
    assert not logs.active


def test_diverged_seeds_leave_the_aggregates():
    """A seed with a non-finite metric is left out of that update's aggregates and every later one."""
    seen = []
    recorder = type("Recorder", (loggers.Logger,), {"log_block": lambda self, block: seen.append(block)})()
    logs = loggers.Loggers([recorder])
    logs.start(CONFIG, {}, 0)
    first = np.arange(15.0).reshape(5, 3) ** 2  # 5 seeds, 3 updates; skewed: IQM != mean
    first[4, 1] = np.nan
    later = np.arange(15.0).reshape(5, 3) ** 3  # seed 4 finite again: still left out
    steps = np.arange(1, 7) * CONFIG.batch_size
    logs.on_block(3, {"env_steps": np.tile(steps[:3], (5, 1)), "policy_loss": first}, {})
    logs.on_block(6, {"env_steps": np.tile(steps[3:], (5, 1)), "policy_loss": later}, {})
    np.testing.assert_array_equal(seen[0].finite[4], [True, False, False])
    assert not seen[1].finite[4].any() and seen[1].finite[:4].all()
    agg = loggers.aggregates(first, seen[0].finite)
    np.testing.assert_allclose(agg["iqm"], [iqm(first[:, 0]), *iqm(first[:4, 1:])])
    agg = loggers.aggregates(later, seen[1].finite)
    np.testing.assert_allclose(agg["iqm"], iqm(later[:4]))
    np.testing.assert_allclose(agg["mean"], later[:4].mean(axis=0))
    assert not np.allclose(agg["iqm"], agg["mean"])


# --- the --log flag -----------------------------------------------------------------------

def test_unknown_logger_is_a_clear_error_before_compiling(tmp_path, capsys, monkeypatch):
    forbid_compiling(monkeypatch)
    assert cli.main(["train", *FLAGS, "--out", str(tmp_path / "r"), "--log", "tensorboard,mlflow"]) == 2
    err = capsys.readouterr().err
    assert "--log" in err and "'mlflow'" in err and "tensorboard, wandb" in err
    assert not (tmp_path / "r").exists()


def _without_wandb(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else find_spec(name, *a))


def test_missing_package_names_the_extra_before_compiling(tmp_path, capsys, monkeypatch):
    forbid_compiling(monkeypatch)
    _without_wandb(monkeypatch)
    assert cli.main(["train", *FLAGS, "--out", str(tmp_path / "r"), "--log", "wandb"]) == 2
    assert "pip install 'purejaxvpg[wandb]'" in capsys.readouterr().err


def test_resume_keeps_the_recorded_loggers(tmp_path, capsys, monkeypatch):
    forbid_compiling(monkeypatch)
    _without_wandb(monkeypatch)
    rundir.write_config(tmp_path, CONFIG, {"num_seeds": 4, "log_every": 2, "log": ["wandb"]})
    assert cli.main(["train", "--resume", str(tmp_path), "--no-progress"]) == 2  # wandb: the run's choice
    assert "pip install 'purejaxvpg[wandb]'" in capsys.readouterr().err


# --- TensorBoard --------------------------------------------------------------------------

def _tfrecords(path):
    """Event protos of a TensorBoard event file: TFRecord framing (length u64, its crc u32,
    data, data crc u32), each record a tensorboardX-bundled Event."""
    from tensorboardX.proto import event_pb2

    data, pos = path.read_bytes(), 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[pos + 12:pos + 12 + length])
        pos += 12 + length + 4
        yield event


def test_tensorboard_event_file_holds_the_iqm_and_mean_of_every_update(cli_run):
    pytest.importorskip("tensorboardX")
    [events] = (cli_run / "run" / "tensorboard").glob("events.out.tfevents.*")
    scalars = {}
    for event in _tfrecords(events):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    with np.load(cli_run / "run" / "metrics.npz") as saved:
        steps = saved["env_steps"][0]
        for name in set(pjv.METRIC_NAMES) - {"env_steps"}:
            for stat, reference in (("iqm", iqm(saved[name])), ("mean", saved[name].mean(axis=0))):
                curve = scalars[f"{name}/{stat}"]
                assert sorted(curve) == list(steps), name  # x-axis: env steps per seed
                np.testing.assert_allclose([curve[s] for s in steps], reference, rtol=1e-5, err_msg=name)
        curve = scalars["eval_return_greedy/iqm"]
        assert sorted(curve) == list(saved["eval_env_steps"])
        np.testing.assert_allclose([curve[s] for s in saved["eval_env_steps"]],
                                   iqm(saved["eval_return_greedy"]), rtol=1e-5)
        # the final evaluation, once, at the run's last env step
        final = {step: v for step, v in scalars["final/eval_return_greedy/iqm"].items()}
        assert list(final) == [int(saved["final_env_steps"])]
        np.testing.assert_allclose(list(final.values()), [iqm(saved["final_eval_return_greedy"][:, None])[0]],
                                   rtol=1e-5)
        np.testing.assert_allclose(list(scalars["final/eval_return_stochastic/mean"].values()),
                                   [saved["final_eval_return_stochastic"].mean()], rtol=1e-5)


# --- Weights & Biases (offline) -----------------------------------------------------------

def _wandb_records(path):
    """Records of an offline W&B run file: a 7-byte header, then LevelDB-log framing
    (32 KiB blocks; chunk header crc u32, length u16, type u8: 1 full, 2 first, 3 middle,
    4 last), each record a wandb_internal_pb2.Record."""
    from wandb.proto import wandb_internal_pb2

    data, pos, block, pending = path.read_bytes(), 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def test_wandb_offline_run_holds_config_curves_iqm_and_the_run_directory(cli_run):
    pytest.importorskip("wandb")
    import json

    run_id = (cli_run / "run" / "wandb-run-id").read_text().strip()
    [path] = (cli_run / "wandb-home").rglob(f"run-{run_id}.wandb")  # W&B keeps its first WANDB_DIR
    records = list(_wandb_records(path))
    [run] = [r.run for r in records if r.HasField("run")]
    assert run.run_group == run.display_name == "run"  # grouped by the run directory's name
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["config"]["total_steps"] == CONFIG.total_steps and config["run"]["num_seeds"] == 2
    assert config["versions"]["jax"] and "git_commit" in config
    history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
               for r in records if r.HasField("history")]
    assert [row["updates_done"] for row in history] == list(range(1, CONFIG.num_updates + 1))
    with np.load(cli_run / "run" / "metrics.npz") as saved:
        assert [row["env_steps"] for row in history] == list(saved["env_steps"][0])
        for name in ("episode_return", "value_loss", "episodes_finished"):
            np.testing.assert_allclose([row[f"{name}/iqm"] for row in history], iqm(saved[name]), rtol=1e-6)
            np.testing.assert_allclose([row[f"{name}/mean"] for row in history], saved[name].mean(axis=0),
                                       rtol=1e-6)
        for seed in range(2):  # each seed's return curve, named by its global seed (3, 4)
            np.testing.assert_allclose([row[f"episode_return/seed_{3 + seed}"] for row in history],
                                       saved["episode_return"][seed], rtol=1e-6)
        evals = [row for row in history if "eval_return_greedy/iqm" in row]
        assert [row["env_steps"] for row in evals] == list(saved["eval_env_steps"])
        np.testing.assert_allclose([row["eval_return_greedy/iqm"] for row in evals],
                                   iqm(saved["eval_return_greedy"]), rtol=1e-6)
        np.testing.assert_allclose([row["eval_return_stochastic/seed_4"] for row in evals],
                                   saved["eval_return_stochastic"][1], rtol=1e-6)
        summary = {i.key or "/".join(i.nested_key): json.loads(i.value_json)
                   for r in records if r.HasField("summary") for i in r.summary.update}
        np.testing.assert_allclose(summary["final/eval_return_greedy/iqm"],
                                   iqm(saved["final_eval_return_greedy"][:, None])[0], rtol=1e-6)
    [metric] = [r.metric for r in records if r.HasField("metric") and r.metric.glob_name == "*"]
    assert metric.step_metric == "env_steps"
    [artifact] = [r.artifact for r in records if r.HasField("artifact")]
    files = {c.path for c in artifact.manifest.contents}
    assert {"config.json", "metrics.csv", "metrics.npz", "learning_curve.png"} <= files
    assert any(f.startswith("checkpoints/") for f in files) and runlock.LOCK_NAME not in files
    [exit_record] = [r.exit for r in records if r.HasField("exit")]
    assert exit_record.exit_code == 0


def test_loggers_stopped_before_they_started_finish_quietly(tmp_path, capsys):
    """The probe's Ctrl-C while compiling a `--log tensorboard` run warned 'the tensorboard
    logger failed in finish (AttributeError: ... no attribute writer)': finish ran on a
    logger that never started."""
    made = loggers.make(tmp_path, tuple(INSTALLED), None)
    assert len(made.active) == 1 + len(INSTALLED)
    made.finish(None)
    assert capsys.readouterr().err == ""
