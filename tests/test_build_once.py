"""One `purejaxvpg train --eval-every` builds the environment once: `Agent.build` is the
only place a config's environment stacks are built; the memory estimate, the session's
check, the evaluation and the trained policy read the agent's stacks."""

import gymnax

from purejaxvpg import envs
from purejaxvpg.tools import cli

BUILDS = []


def counting_cartpole():
    """CartPole, counting every call (one call: one environment built)."""
    BUILDS.append(1)
    return gymnax.make("CartPole-v1")


def test_a_train_run_with_evaluations_builds_its_environment_once(tmp_path):
    envs.register("CountingCartPole", counting_cartpole, overwrite=True)
    BUILDS.clear()
    out = tmp_path / "run"
    code = cli.main(["train", "--env-id", "CountingCartPole", "--total-steps", "2048", "--num-envs", "4",
                     "--num-steps", "16", "--eval-every", "8", "--eval-episodes", "2", "--num-seeds", "2",
                     "--out", str(out), "--no-progress"])
    assert code == 0
    assert (out / "metrics.npz").exists()
    assert len(BUILDS) == 1, f"the environment was built {len(BUILDS)} times"


def test_pjv_train_and_its_policy_build_the_environment_once():
    envs.register("CountingCartPole", counting_cartpole, overwrite=True)
    BUILDS.clear()
    import purejaxvpg as pjv

    config = pjv.Config(env_id="CountingCartPole", total_steps=1024, num_envs=4, num_steps=16, eval_every=4,
                        eval_episodes=2)
    result = pjv.train(config, num_seeds=2)
    act = result.policy(1)
    assert int(act(np_obs())) in (0, 1)
    assert len(BUILDS) == 1, f"the environment was built {len(BUILDS)} times"


def np_obs():
    import numpy as np

    return np.zeros(4, np.float32)
