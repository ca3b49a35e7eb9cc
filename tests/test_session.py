"""Sessions: blocks of compiled updates with checkpoints. An interrupted run resumed from
its checkpoint ends exactly like one that never stopped."""

import shutil

import chex
import jax
import numpy as np
import pytest

import purejaxvpg as pjv
from purejaxvpg.algo.prng import is_key, to_data
from purejaxvpg.host import driver, session
from purejaxvpg.host.checkpoint import Checkpoints

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
    # blocks are whole eval_every periods: log_every 3 -> blocks of 5 (5, 10, and a partial 12)
    first = session.run(CONFIG, OPTIONS, tmp_path, stop_after=4)  # stops at the block end: 5
    assert first.metrics["env_steps"].shape == (2, 5)
    assert first.eval_metrics["eval_return_greedy"].shape == (2, 1)
    assert Checkpoints(tmp_path).latest() == 5
    resumed = session.run(CONFIG, OPTIONS, tmp_path, resume=True)
    assert resumed.updates_trained == CONFIG.num_updates - 5  # steps/s counts only these
    chex.assert_trees_all_equal(resumed.metrics, uninterrupted.metrics)
    chex.assert_trees_all_equal(resumed.eval_metrics, uninterrupted.eval_metrics)
    # PRNG keys compare by their key data
    chex.assert_trees_all_equal(to_data(resumed.final_state), to_data(uninterrupted.final_state))


def test_session_trains_what_the_one_call_trains(uninterrupted):
    one_call = pjv.train(CONFIG, num_seeds=2, seed=0)
    chex.assert_trees_all_close(one_call.metrics, uninterrupted.metrics, rtol=1e-4, atol=1e-4)


def test_checkpoint_keeps_observation_statistics_and_keys(uninterrupted, whole_dir):
    from purejaxvpg import envs

    step, state, metrics = Checkpoints(whole_dir).restore(driver.abstract_state(CONFIG, 2))
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
    session.run(CONFIG, OPTIONS, tmp_path, stop_after=3)  # blocks of 5: stops at 5
    ckpt = tmp_path / "checkpoints"
    # what a process killed while writing step 10 leaves: orbax's temporary directory,
    # half full (it is renamed to "10" only once complete)
    partial = ckpt / "10.orbax-checkpoint-tmp-1234"
    shutil.copytree(ckpt / "5", partial)
    for path in sorted(partial.rglob("*"))[::2]:
        if path.is_file():
            path.write_bytes(b"")
    assert Checkpoints(tmp_path).latest() == 5
    resumed = session.run(CONFIG, OPTIONS, tmp_path, resume=True)
    assert resumed.metrics["env_steps"].shape == (2, CONFIG.num_updates)


def test_bad_run_options_are_clear_errors():
    with pytest.raises(ValueError, match="checkpoint_every"):
        session.RunOptions(checkpoint_every=-1).validate()
    with pytest.raises(ValueError, match="num_seeds"):
        session.RunOptions(num_seeds=0).validate()


def test_a_session_of_more_seeds_than_fit_is_refused_with_the_ways_to_train_them():
    """One session holds its seeds at once: more than fit is refused before compiling,
    naming the CLI's chunks (seed_ranges.py), pjv.train's, and seed ranges joined by merge."""
    big = pjv.Config(num_envs=512, num_steps=1024, total_steps=512 * 1024)  # ~2.4 GiB a seed
    with pytest.raises(ValueError, match=r"^num_seeds: at most \d+ seeds fit .*--chunk-size \d+ or fewer.*"
                                         r"purejaxvpg.train.*--seed-start K .*purejaxvpg merge"):
        session.check(big, session.RunOptions(num_seeds=100_000))
