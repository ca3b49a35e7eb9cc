"""Sessions: blocks of compiled updates with checkpoints. An interrupted run resumed from
its checkpoint ends exactly like one that never stopped."""

import shutil

import jax
import numpy as np
import pytest

import purejaxvpg as pjv
from purejaxvpg import session
from purejaxvpg.checkpoint import Checkpoints
from purejaxvpg.chunks import is_key

# Pendulum with observation normalisation: the statistics must travel with the checkpoint
CONFIG = pjv.Config(env_id="Pendulum-v1", normalize_obs=True, scale_rewards=True,
                    total_steps=4 * 16 * 12, num_envs=4, num_steps=16, eval_every=5, eval_episodes=2)
OPTIONS = session.RunOptions(num_seeds=2, log_every=3, checkpoint_every=3, progress=False)


@pytest.fixture(scope="module")
def whole_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("whole")


@pytest.fixture(scope="module")
def uninterrupted(whole_dir):
    return session.run(CONFIG, OPTIONS, whole_dir)


def test_interrupted_and_resumed_run_ends_with_the_same_metrics(uninterrupted, tmp_path):
    first = session.run(CONFIG, OPTIONS, tmp_path, stop_after=5)  # stops at the block end: 6
    assert first.metrics["env_steps"].shape == (2, 6)
    assert Checkpoints(tmp_path).latest() == 6
    resumed = session.run(CONFIG, OPTIONS, tmp_path, resume=True)
    assert resumed.updates_trained == CONFIG.num_updates - 6  # steps/s counts only these
    for name in pjv.METRIC_NAMES:
        np.testing.assert_array_equal(resumed.metrics[name], uninterrupted.metrics[name], err_msg=name)
    for name, values in uninterrupted.eval_metrics.items():
        np.testing.assert_array_equal(resumed.eval_metrics[name], values, err_msg=name)
    same = jax.tree.map(lambda a, b: np.array_equal(_data(a), _data(b)),
                        resumed.final_state, uninterrupted.final_state)
    assert all(jax.tree.leaves(same))


def _data(x):
    """PRNG keys compare by their key data."""
    return jax.random.key_data(x) if is_key(x) else x


def test_session_trains_what_the_one_call_trains(uninterrupted):
    one_call = pjv.train(CONFIG, num_seeds=2, seed=0)
    for name in pjv.METRIC_NAMES:
        np.testing.assert_allclose(one_call.metrics[name], uninterrupted.metrics[name],
                                   rtol=1e-4, atol=1e-4, err_msg=name)


def test_checkpoint_keeps_observation_statistics_and_keys(uninterrupted, whole_dir):
    import envs

    step, state, metrics = Checkpoints(whole_dir).restore(session.abstract_state(CONFIG, 2))
    assert step == CONFIG.num_updates
    np.testing.assert_array_equal(metrics["episode_return"], uninterrupted.metrics["episode_return"])
    restored = envs.observation_stats(state.runner.env_state)
    trained = envs.observation_stats(uninterrupted.final_state.runner.env_state)
    np.testing.assert_array_equal(restored.mean, trained.mean)
    np.testing.assert_array_equal(restored.var, trained.var)
    assert is_key(state.runner.key)
    np.testing.assert_array_equal(jax.random.key_data(state.runner.key),
                                  jax.random.key_data(uninterrupted.final_state.runner.key))


def test_a_checkpoint_killed_mid_write_leaves_the_last_good_one_readable(tmp_path):
    session.run(CONFIG, OPTIONS, tmp_path, stop_after=3)
    ckpt = tmp_path / "checkpoints"
    # what a process killed while writing step 6 leaves: orbax's temporary directory,
    # half full (it is renamed to "6" only once complete)
    partial = ckpt / "6.orbax-checkpoint-tmp-1234"
    shutil.copytree(ckpt / "3", partial)
    for path in sorted(partial.rglob("*"))[::2]:
        if path.is_file():
            path.write_bytes(b"")
    assert Checkpoints(tmp_path).latest() == 3
    resumed = session.run(CONFIG, OPTIONS, tmp_path, resume=True)
    assert resumed.metrics["env_steps"].shape == (2, CONFIG.num_updates)


def test_bad_run_options_are_clear_errors():
    with pytest.raises(ValueError, match="checkpoint_every"):
        session.RunOptions(checkpoint_every=-1).validate()
    with pytest.raises(ValueError, match="num_seeds"):
        session.RunOptions(num_seeds=0).validate()
