"""Checkpoints written by the previous release (layout v0, tests/data/old-checkpoint-v0: a
CartPole run interrupted at update 4 of 8) resume and evaluate with the current code.

The reference is the current code's own run of the same config from scratch: training is
deterministic on CPU, so the old run resumed must end with exactly its metrics."""

import json
import shutil
from pathlib import Path

import chex
import jax
import numpy as np
import pytest

from purejaxvpg.algo import prng
from purejaxvpg.host import driver, rundir
from purejaxvpg.host.checkpoint import Checkpoints, LayoutError
from purejaxvpg.tools import cli

# The old run's files were written by an older program; since then a seed's reductions sum in
# a batch-independent order (issue 13), which moved float results in the last bits. Integer
# leaves (keys, counters, episode counts) must still match exactly, floats to rounding.
ROUNDING = dict(rtol=1e-5, atol=1e-6)


def _assert_same(restored, reference) -> None:
    exact = lambda tree: [x for x in jax.tree.leaves(tree) if np.asarray(x).dtype.kind != "f"]  # noqa: E731
    chex.assert_trees_all_equal(exact(restored), exact(reference))
    chex.assert_trees_all_close(restored, reference, **ROUNDING)

OLD_RUN = Path(__file__).parent / "data" / "old-checkpoint-v0"
SAME_RUN = ["--env-id", "CartPole-v1", "--num-seeds", "2", "--total-steps", "512", "--num-envs", "4",
            "--num-steps", "16", "--hidden-sizes", "8", "--eval-every", "2", "--eval-episodes", "2",
            "--log-every", "2", "--checkpoint-every", "4", "--no-progress"]


def _copy_of_old_run(tmp_path) -> Path:
    """A scratch copy: resuming and evaluating write into the run directory."""
    return Path(shutil.copytree(OLD_RUN, tmp_path / "old"))


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory):
    """The same run trained from update 0 by the current code (checkpoints at 4 and 8)."""
    out = tmp_path_factory.mktemp("fresh") / "run"
    assert cli.main(["train", *SAME_RUN, "--out", str(out)]) == 0
    # the very same run (fields added since read back as their defaults)
    assert rundir.read_config(out)[0] == rundir.read_config(OLD_RUN)[0]
    return out


def _recorded(run_dir: Path) -> dict:
    return json.loads((run_dir / "config.json").read_text())


def test_an_old_run_resumed_ends_with_the_metrics_of_a_fresh_run(fresh_run, tmp_path):
    old = _copy_of_old_run(tmp_path)
    assert cli.main(["train", "--resume", str(old), "--no-progress"]) == 0
    assert _recorded(old)["results"]["updates_done"] == 8
    resumed, fresh = np.load(old / "metrics.npz"), np.load(fresh_run / "metrics.npz")
    assert sorted(resumed.files) == sorted(fresh.files)
    assert fresh["eval_return_greedy"].shape == (2, 4)  # unpadded: one column per evaluation
    for name in fresh.files:
        np.testing.assert_allclose(resumed[name], fresh[name], **ROUNDING, err_msg=name)


def test_an_old_checkpoint_restores_as_the_current_code_writes_it(fresh_run, tmp_path):
    """The renamed field and the unpadded evaluations, leaf by leaf, against the fresh
    run's checkpoint after the same update."""
    config, _ = rundir.read_config(fresh_run)
    abstract = driver.abstract_state(config, 2)
    old = Checkpoints(_copy_of_old_run(tmp_path))
    step, state, history = old.restore(abstract, eval_every=2)
    old.close()
    fresh = Checkpoints(fresh_run)
    _, fresh_state, fresh_history = fresh.restore(abstract, step=4, eval_every=2)
    fresh.close()
    assert step == 4 and int(state.updates_done[0]) == 4
    _assert_same(prng.to_data(state), prng.to_data(fresh_state))
    assert history["eval_return_greedy"].shape == (2, 2)  # the evaluations after updates 1 and 3
    _assert_same(history, fresh_history)


def test_eval_of_an_old_run(tmp_path, capsys):
    old = _copy_of_old_run(tmp_path)
    assert cli.main(["eval", str(old), "--episodes", "2"]) == 0
    record = json.loads((old / "eval.json").read_text())
    assert record["updates_done"] == 4
    for mode in ("greedy", "stochastic"):
        returns = np.array(record[mode]["return_per_seed"])
        assert returns.shape == (2,) and np.all(returns >= 1)  # CartPole pays 1 per step survived


def test_an_old_checkpoint_without_eval_every_is_refused_not_set_aside(tmp_path):
    old_dir = _copy_of_old_run(tmp_path)
    config, _ = rundir.read_config(old_dir)
    old = Checkpoints(old_dir)
    with pytest.raises(LayoutError, match="eval_every"):
        old.restore(driver.abstract_state(config, 2), set_aside_damaged=True)
    old.close()
    assert (old_dir / "checkpoints" / "4").is_dir()  # intact: not renamed damaged-4
