"""Seeds run in sequential chunks give the results of one unchunked call; finished chunks
are written as they complete and reused by a rerun."""

import jax
import numpy as np
import pytest

import purejaxvpg as pjv


def test_chunked_run_equals_unchunked(tiny_config, tiny_result):
    chunked = pjv.train(tiny_config, num_seeds=8, seed=0, chunk_size=3)  # 3 + 3 + 2 (padded)
    assert chunked.chunk_size == 3
    for name in pjv.METRIC_NAMES:
        np.testing.assert_allclose(
            chunked.metrics[name], tiny_result.metrics[name], rtol=1e-5, atol=1e-6, err_msg=name
        )
    assert chunked.final_state.runner.key.shape == (8,)


def test_finished_chunks_are_written_and_reused(tiny_config, tmp_path):
    first = pjv.train(tiny_config, num_seeds=6, chunk_size=2, results_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.glob("chunk-*.npz"))
    assert files == ["chunk-0000000-0000002.npz", "chunk-0000002-0000004.npz", "chunk-0000004-0000006.npz"]
    (tmp_path / files[-1]).unlink()  # as if the run had been killed during its last chunk
    again = pjv.train(tiny_config, num_seeds=6, chunk_size=2, results_dir=tmp_path)
    assert again.chunks_loaded == 2 and again.seeds_trained == 2
    for name in pjv.METRIC_NAMES:
        np.testing.assert_array_equal(again.metrics[name], first.metrics[name], err_msg=name)
    jax.tree.map(np.testing.assert_array_equal, again.params, first.params)


def test_results_dir_of_another_run_is_refused(tiny_config, tmp_path):
    pjv.train(tiny_config, num_seeds=2, chunk_size=1, results_dir=tmp_path)
    with pytest.raises(ValueError, match="^results_dir: .* different run"):
        pjv.train(tiny_config, num_seeds=2, seed=1, chunk_size=1, results_dir=tmp_path)
