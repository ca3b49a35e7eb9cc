"""The XLand-MiniGrid adapter keeps the contract (runs only where the xminigrid extra is installed).

References are the raw library's own reset/step (xminigrid.make), read independently of the
adapter, and XLand's reward formula 1 - 0.9 * steps / max_steps.
"""

import functools
import json

import jax
import numpy as np
import pytest
from conftest import interrupt_then_resume_and_evaluate

import purejaxvpg as pjv
from purejaxvpg import envs
from purejaxvpg.tools import cli

xminigrid = pytest.importorskip("xminigrid")

EMPTY = "MiniGrid-Empty-5x5"  # agent at (1, 1) facing right, goal at (3, 3), limit 4 * 5 * 5
FORWARD, RIGHT = 0, 1
TO_GOAL = (FORWARD, FORWARD, RIGHT, FORWARD, FORWARD)  # (1,1) -> (1,3), face down, -> (3,3)
NUM_ENVS, NUM_STEPS = 64, 1000


@functools.cache
def adapter_step(limit):
    """The adapter's jitted single-environment step (one compile per limit, shared by tests)."""
    env, params = envs.make("xminigrid/" + EMPTY, **({} if limit is None else {"max_steps_in_episode": limit}))
    return env, params, jax.jit(lambda key, state, action: env.step(key, state, action, params))


@functools.cache
def library():
    """The raw library's Empty-5x5 (the reference): env, params (limit 100) and its jitted step."""
    env, params = xminigrid.make(EMPTY)
    return env, params, jax.jit(lambda timestep, action: env.step(params, timestep, action))


def library_observation(actions):
    """The raw library's observation after `actions` from the (deterministic) start."""
    env, params, step = library()
    timestep = env.reset(params, jax.random.key(0))
    for action in actions:
        timestep = step(timestep, action)
    return np.asarray(timestep.observation)


def run(limit, actions):
    """Adapter outputs, one row per scripted action, from reset(key 0)."""
    env, params, step = adapter_step(limit)
    obs, state = env.reset(jax.random.key(0), params)
    rows = []
    for i, action in enumerate(actions):
        obs, state, reward, term, trunc, info = step(jax.random.key(i), state, action)
        rows.append((obs, float(reward), bool(term), bool(trunc), info["final_observation"], int(state.state.step_num)))
    return [np.asarray(column) for column in zip(*rows)]


def test_suite_lists_every_minigrid_id_of_the_library():
    suite = envs.suites.suite_of("xminigrid/")
    minigrid = sorted(i for i in xminigrid.registered_environments() if i.startswith("MiniGrid-"))
    assert sorted(suite.names) == minigrid
    assert "xminigrid/" + EMPTY in envs.registered()


def test_one_listed_id_passes_check_env():
    envs.check_env(*envs.make("xminigrid/" + EMPTY))


@pytest.mark.slow  # check_env's jitted rollout compiles once per id: ~75 s for all of them
def test_every_listed_id_passes_check_env():
    for env_id in envs.suites.suite_of("xminigrid/").ids:
        envs.check_env(*envs.make(env_id))


def test_every_listed_id_has_the_librarys_limit_and_spaces():
    for env_id in envs.suites.suite_of("xminigrid/").ids:
        env, params = envs.make(env_id)
        lib_env, lib_params = xminigrid.make(env_id.removeprefix("xminigrid/"))
        assert params.max_steps_in_episode == lib_params.max_steps  # the library's own limit
        assert env.observation_space(params).shape == lib_env.observation_shape(lib_params)
        assert env.action_space(params).n == lib_env.num_actions(lib_params)


def test_unlisted_names_are_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match="env_id: .*MiniGrid-Empty-5x5"):
        envs.make("xminigrid/XLand-MiniGrid-R1-9x9")
    from purejaxvpg.envs.xminigrid_adapter import make

    with pytest.raises(ValueError, match="benchmark download.*MiniGrid-FourRooms"):
        make("XLand-MiniGrid-R1-9x9")
    for limit in (0, -3):  # XLand would never end an episode (it truncates on step_num == max_steps)
        with pytest.raises(ValueError, match="env_params.max_steps_in_episode: .*whole number of steps >= 1"):
            pjv.train(pjv.Config(env_id="xminigrid/" + EMPTY, env_params=(("max_steps_in_episode", limit),)))


def test_contract_random_steps_match_the_library():
    env, params = envs.make("xminigrid/" + EMPTY)
    lib_env, lib_params, _ = library()
    vec = envs.VecEnv(env, NUM_ENVS)
    n = env.action_space(params).n

    def rollout(key):
        obs, state = vec.reset(key, params)

        def step(carry, key):
            obs, state = carry
            key_act, key_env = jax.random.split(key)
            action = jax.random.randint(key_act, (NUM_ENVS,), 0, n)
            raw = jax.vmap(lambda s, a: lib_env.step(lib_params, s, a))(state, action)
            next_obs, state, reward, term, trunc, info = vec.step(key_env, state, action, params)
            return (next_obs, state), (next_obs, reward, term, trunc, info["final_observation"], raw,
                                       state.state.step_num)

        return jax.lax.scan(step, (obs, state), jax.random.split(key, NUM_STEPS))[1]

    next_obs, reward, term, trunc, final, raw, step_num = jax.jit(rollout)(jax.random.key(0))
    next_obs, final, reward, step_num = map(np.asarray, (next_obs, final, reward, step_num))
    term, trunc = np.asarray(term), np.asarray(trunc)
    assert next_obs.dtype == final.dtype == np.uint8 and next_obs.shape == (NUM_STEPS, NUM_ENVS, 7, 7, 2)
    assert reward.dtype == np.float32 and term.dtype == trunc.dtype == bool
    assert np.all(np.isfinite(reward))
    # the library's ending, read independently: LAST (2) with discount 0 ends, LAST with 1 is the limit
    last, discount = np.asarray(raw.step_type) == 2, np.asarray(raw.discount)
    np.testing.assert_array_equal(term, last & (discount == 0))
    np.testing.assert_array_equal(trunc, last & (discount != 0))
    assert term.any() and trunc.any() and not (term & trunc).any()
    np.testing.assert_array_equal(reward, np.asarray(raw.reward))
    np.testing.assert_array_equal(final, np.asarray(raw.observation))
    done = term | trunc
    np.testing.assert_array_equal(next_obs[~done], np.asarray(raw.observation)[~done])
    reset_obs = np.asarray(lib_env.reset(lib_params, jax.random.key(0)).observation)  # deterministic start
    assert (next_obs[done] == reset_obs).all() and (step_num[done] == 0).all()  # auto-reset, same step


def test_xlands_own_limit_truncates_and_the_goal_terminates():
    """Default limit (XLand's max_steps = 100): the goal in 5 steps is terminated with XLand's
    reward; then 100 steps into the wall end on the library's LAST with discount 1: truncated."""
    steps = xminigrid.make(EMPTY)[1].max_steps
    wall = [FORWARD] * steps  # (1,1) -> (1,3), then against the wall: never the goal
    obs, reward, term, trunc, final, step_num = run(None, [*TO_GOAL, *wall, RIGHT])
    ends = [len(TO_GOAL) - 1, len(TO_GOAL) + steps - 1]
    assert np.flatnonzero(term).tolist() == ends[:1] and np.flatnonzero(trunc).tolist() == ends[1:]
    np.testing.assert_allclose(reward, np.eye(len(reward))[ends[0]] * (1 - 0.9 * 5 / steps), rtol=1e-6)
    np.testing.assert_array_equal(final[ends[0]], library_observation(TO_GOAL))
    np.testing.assert_array_equal(final[ends[1]], library_observation(wall))
    for end in ends:  # auto-reset on the same step: the next episode's first observation
        np.testing.assert_array_equal(obs[end], library_observation([]))
    assert step_num[ends].tolist() == [0, 0] and step_num[-1] == 1


def test_overridden_limit_moves_xlands_own_limit():
    """max_steps_in_episode=5 is XLand's limit too: the goal on step 5 (the limit's own step) is
    terminated (termination wins) with reward 1 - 0.9 * 5 / 5; spinning 5 steps is truncated."""
    spin = [RIGHT] * 5
    obs, reward, term, trunc, final, step_num = run(5, [*TO_GOAL, *spin])
    assert np.flatnonzero(term).tolist() == [4] and np.flatnonzero(trunc).tolist() == [9]
    np.testing.assert_allclose(reward, np.eye(10)[4] * 0.1, rtol=1e-6)
    np.testing.assert_array_equal(final[9], library_observation(spin))
    np.testing.assert_array_equal(obs[9], library_observation([]))
    assert step_num[[4, 9]].tolist() == [0, 0]
    env, params, _ = adapter_step(5)
    assert env.library_params(params).max_steps == 5


@pytest.mark.slow  # trains through the whole program: run with -m slow
def test_training_by_the_cli_resumes_and_evaluates_in_a_fresh_process(tmp_path):
    """A suite id and its --env-param are recorded in config.json; a new interpreter (which has
    built nothing) resumes the interrupted run to the uninterrupted numbers and evaluates it."""
    out = tmp_path / "run"
    argv = ["train", "--env-id", "xminigrid/" + EMPTY, "--env-param", "max_steps_in_episode=20",
            "--num-envs", "4", "--num-steps", "16", "--total-steps", str(4 * 16 * 4), "--eval-every", "0",
            "--num-seeds", "2", "--checkpoint-every", "2", "--no-progress", "--out", str(out)]
    assert cli.main(argv) == 0
    whole = dict(np.load(out / "metrics.npz"))
    for name, values in whole.items():
        assert np.all(np.isfinite(values)), name
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["config"]["env_id"] == "xminigrid/" + EMPTY
    # interrupted after update 2: the newest checkpoint and the results gone
    done = interrupt_then_resume_and_evaluate(out, newest=4)
    assert done.returncode == 0, done.stderr
    assert "update 2 of 4" in done.stderr
    resumed = np.load(out / "metrics.npz")
    for name in ("episode_return", "policy_loss", "value_loss"):
        np.testing.assert_array_equal(resumed[name], whole[name], err_msg=name)
    assert "greedy: median / mean length" in done.stdout
