"""MemoryCue-known, the known-answer memory task: a memoryless policy is provably at chance
(its choice cannot depend on a cue it no longer sees), so the MLP trained on it stays within
a binomial interval of 0.5, while the same budget solves the task when the cue is shown at
the choice (delay 0). The recurrent half of this test comes with the GRU (issue 25)."""

import jax
import numpy as np
import pytest
from scipy import stats as sps

import purejaxvpg as pjv
from purejaxvpg import envs

EPISODES, SEEDS = 64, 4
CONFIG = pjv.Config(env_id="MemoryCue-known", total_steps=8 * 16 * 60, num_envs=8, num_steps=16,
                    eval_episodes=EPISODES, policy_lr=3e-3)


def test_the_cue_is_seen_once_and_the_choice_pays_for_matching_it():
    env, params = envs.make("MemoryCue-known")
    for seed in range(6):
        obs, state = env.reset(jax.random.key(seed), params)
        cue = int(state.position)
        assert obs.tolist() == [2.0 * cue - 1.0, 0.0]
        for t in range(params.delay):  # steps 1..delay show nothing of the cue
            obs, state, reward, terminated, _, _ = env.step(jax.random.key(t), state, 1 - cue, params)
            assert float(reward) == 0.0 and not bool(terminated)
            assert obs.tolist() == [0.0, float(t + 1 == params.delay)]
        _, _, reward, terminated, _, _ = env.step(jax.random.key(9), state, cue, params)
        assert float(reward) == 1.0 and bool(terminated)


def test_a_memoryless_policy_stays_at_chance_and_solves_the_task_without_a_delay():
    result = pjv.train(CONFIG, num_seeds=SEEDS)
    wins = int(np.rint(result.final_eval["eval_return_greedy"] * EPISODES).sum())
    low, high = sps.binom.ppf([0.0005, 0.9995], SEEDS * EPISODES, 0.5)  # 99.9% of chance's outcomes
    assert low <= wins <= high, (wins, low, high)
    visible = pjv.train(pjv.Config(**{**CONFIG.__dict__, "env_params": (("delay", 0),)}), num_seeds=SEEDS)
    np.testing.assert_array_equal(visible.final_eval["eval_return_greedy"], 1.0)  # the budget suffices


@pytest.mark.parametrize("delay", [0, 1, 5])
def test_the_episode_lasts_delay_plus_one_steps(delay):
    env, params = envs.make("MemoryCue-known", delay=delay)
    _, state = env.reset(jax.random.key(0), params)
    for t in range(delay + 1):
        _, state, _, terminated, _, _ = env.step(jax.random.key(t), state, 0, params)
        assert bool(terminated) == (t == delay)
