"""`purejaxvpg train` with more seeds than one session holds: sequential chunks, each a
checkpointed sub-run in RUN_DIR/chunks/, joined at the end into a run directory that reads
like one trained at once; interrupted, it resumes chunk by chunk to the same numbers."""

import json
import signal
import subprocess

import jax
import numpy as np
import pytest
from conftest import forbid_compiling

import purejaxvpg as pjv
from purejaxvpg.host import distributed, driver, join, memory, rundir, seed_ranges, session
from purejaxvpg.host.checkpoint import Checkpoints, steps
from purejaxvpg.tools import cli

# 16 updates in blocks of 1, 5 seeds: chunks of 2 are seeds 0..1, 2..3 and 4 (padded to 2)
CONFIG = pjv.Config(env_id="CartPole-v1", total_steps=4 * 8 * 16, num_envs=4, num_steps=8)
FLAGS = ["--env-id", "CartPole-v1", "--total-steps", str(CONFIG.total_steps), "--num-envs", "4",
         "--num-steps", "8", "--num-seeds", "5", "--log-every", "1", "--no-progress"]


@pytest.fixture(scope="module")
def at_once():
    """The reference: the 5 seeds in one session, no run directory."""
    return session.run(CONFIG, session.RunOptions(num_seeds=5, log_every=1, progress=False))


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    out = tmp_path_factory.mktemp("chunked") / "run"
    assert cli.main(["train", *FLAGS, "--chunk-size", "2", "--out", str(out)]) == 0
    return out


def _assert_same_run(out, reference):
    """metrics.npz and the final checkpoint hold the reference's numbers, bit for bit."""
    with np.load(out / "metrics.npz") as saved:
        for name in pjv.METRIC_NAMES:
            np.testing.assert_array_equal(saved[name], reference.metrics[name], err_msg=name)
        np.testing.assert_array_equal(saved["seed"], np.arange(5))
    assert steps(out) == [CONFIG.num_updates]
    checkpoints = Checkpoints(out)
    try:
        _, state, _ = checkpoints.restore(driver.abstract_state(CONFIG, 5))
    finally:
        checkpoints.close()
    for got, want in zip(*(jax.tree.leaves(s.actor_params) for s in (state, reference.final_state))):
        np.testing.assert_array_equal(got, want)


def test_a_chunked_run_is_the_run_trained_at_once(chunked, at_once):
    """Seeds 0..4 in chunks of 2: the joined metrics.npz, metrics.csv and final checkpoint
    are those of the 5 seeds trained in one session; each chunk is a sub-run whose
    checkpoints are gone once the joined one holds every seed, and config.json says so."""
    _assert_same_run(chunked, at_once)
    info = json.loads((chunked / "config.json").read_text())
    assert info["run"]["num_seeds"] == 5 and info["run"]["chunk_size"] == 2
    assert [(c["seed_start"], c["num_seeds"]) for c in info["chunks"]] == [(0, 2), (2, 2), (4, 1)]
    assert info["results"]["updates_done"] == CONFIG.num_updates and info["results"]["final_return"]["seeds"] == 5
    names = sorted(p.name for p in (chunked / "chunks").iterdir())
    assert names == ["seeds-0000000-0000001", "seeds-0000002-0000003", "seeds-0000004-0000004"]
    for name in names:
        assert not (chunked / "chunks" / name / "checkpoints").exists()
        assert json.loads((chunked / "chunks" / name / "config.json").read_text())["results"]
    # the CSV: one row per seed and update, global seed indices, as a run trained at once writes it
    rows = (chunked / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 5 * CONFIG.num_updates
    assert {int(r.split(",")[0]) for r in rows[1:]} == set(range(5))
    # a finished chunked run is a finished run: --resume has nothing to do
    assert cli.main(["train", "--resume", str(chunked)]) == 0


def test_a_chunked_run_reads_like_any_run_in_a_fresh_process(chunked, tmp_path):
    """The installed console script, from outside the checkout: eval reads the joined run."""
    done = subprocess.run(["purejaxvpg", "eval", str(chunked), "--episodes", "2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    evals = json.loads((chunked / "eval.json").read_text())
    assert len(evals["seeds"]) == 5


@pytest.fixture
def ctrl_c_raises():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_in_a_chunk_resumes_chunk_by_chunk_to_the_same_run(at_once, tmp_path, capsys, monkeypatch):
    """SIGINT at update 5 of the second chunk: exit 130, chunk 1 finished, chunk 2
    checkpointed at 5. --resume trains only the rest (chunk 2 from 5, chunk 3) and ends with
    the numbers of the run trained at once; its speed counts only the steps it trained."""
    chunks, run = [], seed_ranges._run_part

    def run_part(config, options, *args):
        chunks.append(options.seed_start)
        return run(config, options, *args)

    def advance(self, steps_done, rate):
        if chunks[-1] == 2 and steps_done == 5 * CONFIG.batch_size:
            signal.raise_signal(signal.SIGINT)

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(seed_ranges, "_run_part", run_part)
        patch.setattr(session.Progress, "advance", advance)
        assert cli.main(["train", *FLAGS, "--chunk-size", "2", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert f"interrupted at chunk 2 of 3 (seeds 2..3), update 5 of 16; resume with --resume {out}" in err
    assert "Traceback" not in err and not (out / "metrics.npz").exists()

    resumed_from, sizes = [], []
    compile_blocks = driver.compile_blocks
    monkeypatch.setattr(driver, "compile_blocks", lambda agent, n, *a, **k: (sizes.append(n),
                                                                            compile_blocks(agent, n, *a, **k))[1])
    session_run = session.run
    monkeypatch.setattr(session, "run", lambda config, options, run_dir, resume=False, **kw: (
        resumed_from.append((options.seed_start, steps(run_dir)[-1] if steps(run_dir) else 0)),
        session_run(config, options, run_dir, resume=resume, **kw))[1])
    assert cli.main(["train", "--resume", str(out)]) == 0
    assert resumed_from == [(2, 5), (4, 0)]  # chunk 1 was not trained again
    assert sizes == [2, 2]  # the last chunk, 1 seed, padded: the others' program
    assert f"resuming {out} from chunk 2 of 3 (seeds 2..3), update 5 of 16" in capsys.readouterr().err
    _assert_same_run(out, at_once)
    results = json.loads((out / "config.json").read_text())["results"]
    trained = (2 * (CONFIG.num_updates - 5) + 1 * CONFIG.num_updates) * CONFIG.batch_size
    assert results["env_steps_per_second"] * results["run_seconds"] == pytest.approx(trained)


@pytest.mark.usefixtures("ctrl_c_raises")
def test_chunks_trained_by_other_code_are_refused_before_compiling(tmp_path, capsys, monkeypatch):
    """A chunk begun by another purejaxvpg (source digest) would be joined with seeds this
    code trains: --resume refuses before compiling, naming the chunk."""
    out = tmp_path / "run"
    with monkeypatch.context() as patch:  # stopped after its last chunk, before the join
        patch.setattr(join, "read_part", lambda *a, **k: signal.raise_signal(signal.SIGINT))
        assert cli.main(["train", *FLAGS, "--chunk-size", "2", "--out", str(out)]) == 130
    first = out / "chunks" / "seeds-0000000-0000001" / "config.json"
    info = json.loads(first.read_text())
    info["code"]["source_sha256"] = "0" * 64
    first.write_text(json.dumps(info))
    forbid_compiling(monkeypatch)
    assert cli.main(["train", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"resume: {first.parent} was trained by other code than this purejaxvpg" in err
    assert "Traceback" not in err


def test_seeds_that_do_not_fit_train_in_chunks_of_what_fits(tmp_path, capsys, monkeypatch):
    """Without --chunk-size the chunk is what fits (estimate); a --chunk-size that does not
    fit is refused before compiling, naming the flag and the limit."""
    monkeypatch.setattr(memory, "seeds_that_fit", lambda agent: 2)
    options = session.RunOptions(num_seeds=5)
    _, planned = seed_ranges.plan(CONFIG, options)
    assert planned.chunk_size == 2 and [len(r) for r in seed_ranges.ranges(planned)] == [2, 2, 1]
    _, planned = seed_ranges.plan(CONFIG, session.RunOptions(num_seeds=2))
    assert planned.chunk_size is None  # they fit: one session, no chunks/
    forbid_compiling(monkeypatch)
    assert cli.main(["train", *FLAGS, "--chunk-size", "3", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "chunk_size: at most 2 seeds fit" in err and "--chunk-size 2 or fewer" in err
    assert not (tmp_path / "run").exists()
    assert cli.main(["train", *FLAGS, "--chunk-size", "0", "--out", str(tmp_path / "run")]) == 2
    assert "chunk_size" in capsys.readouterr().err


def test_a_join_that_would_not_fit_in_host_memory_is_refused_before_compiling(at_once, monkeypatch):
    """The join holds every seed's final state and metrics on the host, twice: the estimate
    is the bytes of the 5 seeds' real final state and metrics, twice; more than the host
    can allocate is refused, naming num_seeds."""
    state = jax.tree.leaves(jax.tree.map(np.asarray, pjv.algo.prng.to_data(at_once.final_state)))
    real = sum(x.nbytes for x in state) + sum(v.nbytes for v in at_once.metrics.values())
    agent = driver.prepare(CONFIG)
    assert memory.joined_bytes(driver.abstract_state(agent, 1), CONFIG, 5) == 2 * real
    monkeypatch.setattr(memory, "seeds_that_fit", lambda agent: 2)
    monkeypatch.setattr(memory, "host_limit", lambda: (2 * real - 1, "host"))
    forbid_compiling(monkeypatch)
    with pytest.raises(ValueError, match=r"^num_seeds: 5 seeds train in chunks of 2, but joining .* needs an "
                                         r"estimated .* host memory"):
        seed_ranges.plan(CONFIG, session.RunOptions(num_seeds=5))


def test_a_distributed_run_is_not_chunked_but_told_how(monkeypatch):
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    with pytest.raises(ValueError, match=r"^num_seeds: .*distributed run trains its seeds in one session.*merge"):
        seed_ranges.plan(CONFIG, session.RunOptions(num_seeds=5, chunk_size=2))


@pytest.mark.usefixtures("ctrl_c_raises")
def test_interrupted_in_the_first_chunk_before_a_checkpoint_keeps_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(driver, "compile_blocks", lambda *a, **k: signal.raise_signal(signal.SIGINT))
    out = tmp_path / "run"
    assert cli.main(["train", *FLAGS, "--chunk-size", "2", "--out", str(out)]) == 130
    assert "nothing to resume" in capsys.readouterr().err
    assert not out.exists()


def test_a_chunked_run_merges_with_another_range(chunked, tmp_path, monkeypatch):
    """Chunking is how a run ran, not what it computed: seeds 0..4 (chunked) and 5..6
    merge into seeds 0..6."""
    rest = tmp_path / "rest"
    flags = list(FLAGS)
    flags[flags.index("--num-seeds") + 1] = "2"
    assert cli.main(["train", *flags, "--seed-start", "5", "--out", str(rest)]) == 0
    assert cli.main(["merge", str(chunked), str(rest), "--out", str(tmp_path / "all")]) == 0
    run = rundir.read_info(tmp_path / "all")["run"]
    assert (run["seed_start"], run["num_seeds"]) == (0, 7)
