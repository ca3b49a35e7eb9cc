"""Every registered environment keeps the contract the trainer relies on, under jit(vmap)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxvpg as pjv
from purejaxvpg import envs
from purejaxvpg.envs import spaces

NUM_ENVS, NUM_STEPS = 64, 1000
# image observations (MinAtar, Pong: 400 to 3,600 values) are checked in fewer environments:
# the test keeps four copies of every observation of the rollout (GBs at 64 environments)
LARGE_OBS, LARGE_OBS_ENVS = 256, 8


def make_or_skip(env_id):
    try:
        return envs.make(env_id)
    except OSError as error:  # MNISTBandit-bsuite downloads MNIST when built
        pytest.skip(f"{env_id} needs a download: {error}")


def check_in_space(x, space, what):
    if spaces.is_discrete(space):
        assert jnp.issubdtype(x.dtype, jnp.integer), (what, x.dtype)
        assert bool(jnp.all((x >= 0) & (x < space.n))), what
    else:
        shape = tuple(x.shape[-len(space.shape):] if space.shape else ())
        assert shape == tuple(space.shape), (what, x.shape, space.shape)


# The suites' environments (envs.suites: brax/, jumanji/, ...) keep the same contract; each
# suite's own test file (tests/test_brax.py, test_jumanji.py, ...) checks it on its cheapest id.
GYMNAX_AND_OWN_IDS = [i for i in envs.registered() if envs.suites.suite_of(i) is None]


@pytest.mark.parametrize("env_id", GYMNAX_AND_OWN_IDS)
def test_contract(env_id):
    env, params = make_or_skip(env_id)
    obs_space, act_space = env.observation_space(params), env.action_space(params)
    # gymnax's ids return gymnax's spaces, envs' own ids purejaxvpg's: both are read by duck typing
    assert spaces.is_discrete(act_space) or spaces.is_box(act_space), type(act_space)
    num_envs = LARGE_OBS_ENVS if np.prod(obs_space.shape) > LARGE_OBS else NUM_ENVS
    vec = envs.VecEnv(env, num_envs)

    def rollout(key):
        key, key_reset = jax.random.split(key)
        obs, state = vec.reset(key_reset, params)

        def step(carry, key):
            obs, state = carry
            key_act, key_env = jax.random.split(key)
            action = jax.vmap(act_space.sample)(jax.random.split(key_act, num_envs))
            # what the transition gives before any auto-reset (gymnax splits the key this way)
            key_step = jax.vmap(lambda k: jax.random.split(k)[0])(jax.random.split(key_env, num_envs))
            pre_reset = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(key_step, state, action, params)[0]
            next_obs, state, reward, term, trunc, info = vec.step(key_env, state, action, params)
            out = (obs, next_obs, reward, term, trunc, info["final_observation"], pre_reset, action)
            return (next_obs, state), out

        return jax.lax.scan(step, (obs, state), jax.random.split(key, NUM_STEPS))[1]

    obs, next_obs, reward, term, trunc, final_obs, pre_reset, action = jax.jit(rollout)(jax.random.key(0))

    assert obs.shape == (NUM_STEPS, num_envs, *obs_space.shape), (obs.shape, obs_space.shape)
    assert reward.shape == term.shape == trunc.shape == (NUM_STEPS, num_envs)
    assert term.dtype == jnp.bool_ and trunc.dtype == jnp.bool_  # two flags, never folded
    check_in_space(action, act_space, "action")
    assert bool(jnp.all(jnp.isfinite(obs.astype(jnp.float32)))), "NaN/inf observation"
    assert bool(jnp.all(jnp.isfinite(reward))), "NaN/inf reward"
    # (equal up to float rounding: XLA may fuse the two computations differently)
    as_float = lambda x: np.asarray(x, np.float64)  # noqa: E731
    np.testing.assert_allclose(as_float(final_obs), as_float(pre_reset), rtol=1e-5, atol=1e-5)
    done = np.asarray(term | trunc)
    # without an episode end the next observation is the final observation
    np.testing.assert_allclose(as_float(next_obs)[~done], as_float(final_obs)[~done], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "FourRooms-misc", "PointRobot-misc"])
def test_the_whole_program_traces_with_evaluation(env_id):
    """make_train with in-run evaluation traces (shapes only, no compile): the evaluation
    environments are built once, outside the trace, as FourRooms and PointRobot require
    (built inside, they fail to trace)."""
    make_or_skip(env_id)
    config = pjv.Config(env_id=env_id, total_steps=2 * 4 * 2, num_envs=2, num_steps=4, eval_every=1,
                        eval_episodes=2, hidden_sizes=(4,))
    _, metrics, evals = jax.eval_shape(jax.vmap(pjv.make_train(config)), pjv.seed_keys(0, 2))
    assert metrics.episode_return.shape == (2, 2) and evals.eval_return_greedy.shape == (2, 2)
