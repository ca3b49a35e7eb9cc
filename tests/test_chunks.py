"""Seeds run in sequential chunks give the results of one unchunked call; finished chunks
are written as they complete and reused by a rerun."""

import chex
import jax
import pytest
from conftest import forbid_compiling

import purejaxvpg as pjv


def test_chunked_run_equals_unchunked(tiny_config, tiny_result):
    chunked = pjv.train(tiny_config, num_seeds=8, seed=0, chunk_size=3)  # 3 + 3 + 2 (padded)
    assert chunked.chunk_size == 3
    # bit for bit: a seed's numbers do not depend on the size of the batch it ran in
    chex.assert_trees_all_equal(chunked.metrics, tiny_result.metrics)
    chex.assert_trees_all_equal(chunked.params, tiny_result.params)
    assert chunked.final_state.runner.key.shape == (8,)


def test_progress_fn_sees_every_block_of_every_chunk_and_changes_no_number(tiny_config, tiny_result):
    """6 updates in blocks of 2, seeds in chunks of 3 + 3 + 2: the callback gets each
    block's env steps per seed and its metrics [chunk seeds, 2], in order; the run's numbers
    are those of the one-call run, bit for bit."""
    calls = []
    result = pjv.train(tiny_config, num_seeds=8, seed=0, chunk_size=3, log_every=2,
                       progress_fn=lambda steps, metrics: calls.append((steps, metrics["episode_return"].shape)))
    batch = tiny_config.batch_size
    assert calls == [(u * batch, (seeds, 2)) for seeds in (3, 3, 2) for u in (2, 4, 6)]
    chex.assert_trees_all_equal(result.metrics, tiny_result.metrics)
    chex.assert_trees_all_equal(result.params, tiny_result.params)


def test_finished_chunks_are_written_and_reused(tiny_config, tmp_path):
    first = pjv.train(tiny_config, num_seeds=6, chunk_size=2, results_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.glob("chunk-*.npz"))
    assert files == ["chunk-0000000-0000002.npz", "chunk-0000002-0000004.npz", "chunk-0000004-0000006.npz"]
    (tmp_path / files[-1]).unlink()  # as if the run had been killed during its last chunk
    again = pjv.train(tiny_config, num_seeds=6, chunk_size=2, results_dir=tmp_path)
    assert again.chunks_loaded == 2 and again.seeds_trained == 2
    chex.assert_trees_all_equal(again.metrics, first.metrics)
    chex.assert_trees_all_equal(again.params, first.params)


_DIGESTS: set = set()


@pytest.fixture(scope="module")
def written(tiny_config, tmp_path_factory):
    """A results_dir of 2 seeds in chunks of 1 (the one compile the tests below share)."""
    from purejaxvpg.host import provenance

    path = tmp_path_factory.mktemp("written")
    digests = {provenance.source_digest()}  # before and after: others may edit the tree meanwhile
    pjv.train(tiny_config, num_seeds=2, chunk_size=1, results_dir=path)
    _DIGESTS.update(digests | {provenance.source_digest()})
    return path


def test_results_dir_of_another_run_is_refused_before_compiling(tiny_config, written, monkeypatch):
    forbid_compiling(monkeypatch)
    with pytest.raises(ValueError, match="^results_dir: .* different run"):
        pjv.train(tiny_config, num_seeds=2, seed=1, chunk_size=1, results_dir=written)


def test_chunks_record_the_code_that_computed_them(written):
    import importlib.metadata
    import json

    from purejaxvpg.host import provenance

    code = json.loads((written / "run.json").read_text())["code"]
    assert code["purejaxvpg"] == importlib.metadata.version("purejaxvpg")
    assert code["jax"] == jax.__version__ and code["git_commit"] == provenance.git_commit()
    assert code["source_sha256"] in _DIGESTS and len(code["source_sha256"]) == 64


def test_source_digest_changes_with_any_source_edit(tmp_path):
    from purejaxvpg.host import provenance

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    before = provenance.source_digest([tmp_path / "pkg"])
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert provenance.source_digest([tmp_path / "pkg"]) != before


def test_the_code_version_is_the_code_the_process_imported(monkeypatch):
    """A source file edited while a long run trains is not the code that run computes with:
    its later chunks must not count as other code (seed_ranges.py joins them)."""
    from purejaxvpg.host import provenance

    first = provenance.code_version()
    monkeypatch.setattr(provenance, "source_digest", lambda roots=None: "0" * 64)  # edited meanwhile
    assert provenance.code_version() == first


def test_stale_chunks_of_other_code_are_refused_before_compiling(tiny_config, written, monkeypatch):
    from purejaxvpg.host import provenance

    changed = {**provenance.code_version(), "source_sha256": "0" * 64}  # the code changed
    monkeypatch.setattr(provenance, "_code_version", lambda: changed)
    forbid_compiling(monkeypatch)
    with pytest.raises(ValueError, match=r"^results_dir: .* computed by other code.*delete .* another results_dir"):
        pjv.train(tiny_config, num_seeds=2, chunk_size=1, results_dir=written)


def test_chunks_of_an_older_version_without_a_code_record_are_refused(tiny_config, tmp_path, monkeypatch):
    (tmp_path / "run.json").write_text('{"config": {}, "keys": []}')  # the format before code versions
    (tmp_path / "chunk-0000000-0000001.npz").write_bytes(b"")
    forbid_compiling(monkeypatch)
    with pytest.raises(ValueError, match=r"^results_dir: .* did not record its code version.*delete"):
        pjv.train(tiny_config, num_seeds=2, chunk_size=1, results_dir=tmp_path)


@pytest.mark.parametrize("kind", ["file", "train run directory"])
def test_results_dir_holding_something_else_is_refused_before_compiling(tiny_config, tmp_path, monkeypatch, kind):
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("not a directory")
        match = "is a file"
    else:  # what `purejaxvpg train --out` writes
        target.mkdir()
        (target / "config.json").write_text("{}")
        (target / "checkpoints").mkdir()
        match = "holds no run.json"
    forbid_compiling(monkeypatch)
    with pytest.raises(ValueError, match=f"^results_dir: .*{match}"):
        pjv.train(tiny_config, num_seeds=2, chunk_size=1, results_dir=target)
    assert kind != "file" or target.read_text() == "not a directory"
