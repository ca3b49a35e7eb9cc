"""The Craftax adapter keeps the contract, checked against the raw library (runs only where the
craftax extra is installed). Craftax compiles slowly on CPU (~20 s per step function), so one
rollout (adapter step and library step side by side) serves the contract, time-limit and
termination tests."""

import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import smoke_train

from purejaxvpg import envs

pytest.importorskip("craftax")
from craftax.craftax_env import make_craftax_env_from_name  # noqa: E402

NAME = "Craftax-Classic-Symbolic-v1"
ENV_ID = "craftax/" + NAME
NUM_ENVS, NUM_STEPS, LIMIT = 16, 150, 40
MAP_SIZE = 7 * 9 * (17 + 4)  # Classic's symbolic map view (7x9 cells, block and mob one-hots), then the player
DIES, DIES_AT_LIMIT = 0, 1  # env 0 dies on its first step, env 1 on the limit step of its first episode


def _near_death(state, index, time):
    """Env `index` of a batched LegacyState set to die on its next step whatever happens: health 1,
    no food, and a recovery counter one step from costing a health point (Classic's intrinsics)."""
    env_state = state.env_state.replace(
        player_health=state.env_state.player_health.at[index].set(1),
        player_food=state.env_state.player_food.at[index].set(0),
        player_recover=state.env_state.player_recover.at[index].set(-15.0),
        timestep=state.env_state.timestep.at[index].set(time),
    )
    return state.replace(env_state=env_state, time=state.time.at[index].set(time))


@pytest.fixture(scope="module")
def rollout():
    return _rollout()


def _rollout():
    env, params = envs.make(ENV_ID, max_steps_in_episode=LIMIT)
    library = make_craftax_env_from_name(NAME, auto_reset=False)  # the reference: the library's own step
    library_params = library.default_params.replace(max_timesteps=LIMIT)
    n = env.action_space(params).n

    def run(key):
        _, state = jax.vmap(env.reset, (0, None))(jax.random.split(key, NUM_ENVS), params)
        state = _near_death(_near_death(state, DIES, 0), DIES_AT_LIMIT, LIMIT - 1)

        def step(state, key):
            key_action, key_env = jax.random.split(key)
            action = jax.random.randint(key_action, (NUM_ENVS,), 0, n)
            keys = jax.random.split(key_env, NUM_ENVS)
            out = jax.vmap(env.step, (0, 0, 0, None))(keys, state, action, params)
            raw_keys = jax.vmap(lambda k: jax.random.key_data(jax.random.split(k)[0]))(keys)
            lib_obs, lib_state, lib_reward, lib_done, _ = jax.vmap(library.step_env, (0, 0, 0, None))(
                raw_keys, state.env_state, action, library_params
            )
            next_obs, state, reward, term, trunc, info = out
            return state, (next_obs, reward, term, trunc, info["final_observation"], keys,
                           lib_obs, lib_reward, lib_done, lib_state.timestep)

        return jax.lax.scan(step, state, jax.random.split(key, NUM_STEPS))[1]

    out = jax.jit(run)(jax.random.key(0))
    names = "obs reward term trunc final keys lib_obs lib_reward lib_done lib_timestep".split()
    result = dict(zip(names, out))
    ended = np.asarray(result["term"] | result["trunc"])
    reset_keys = jax.vmap(lambda k: jax.random.key_data(jax.random.split(k)[1]))(result["keys"][ended])
    result["lib_reset_obs"] = jax.jit(jax.vmap(library.reset_env, (0, None)))(reset_keys, library_params)[0]
    del result["keys"]
    return {k: np.asarray(v) for k, v in result.items()} | {"env": env, "params": params}


def test_craftax_ids_are_registered_and_default_to_the_library_time_limit():
    assert {"craftax/Craftax-Classic-Symbolic-v1", "craftax/Craftax-Symbolic-v1"} <= set(envs.registered())
    env, params = envs.make(ENV_ID)
    assert params.max_steps_in_episode == make_craftax_env_from_name(NAME, False).default_params.max_timesteps
    _, overridden = envs.make(ENV_ID, max_steps_in_episode=7)
    assert overridden.library().max_timesteps == 7  # the library's own limit follows the override


def test_craftax_contract_matches_the_raw_library(rollout):
    r, env, params = rollout, rollout["env"], rollout["params"]
    size = env.observation_space(params).shape[0]
    assert r["obs"].shape == r["final"].shape == (NUM_STEPS, NUM_ENVS, size) and r["obs"].dtype == np.float32
    assert r["reward"].dtype == np.float32 and r["term"].dtype == bool and r["trunc"].dtype == bool
    assert not (r["term"] & r["trunc"]).any()
    assert np.isfinite(r["obs"]).all() and np.isfinite(r["reward"]).all()
    np.testing.assert_array_equal(r["final"], r["lib_obs"])  # every step's pre-reset observation
    np.testing.assert_allclose(r["reward"], r["lib_reward"])
    np.testing.assert_array_equal(r["term"] | r["trunc"], r["lib_done"])  # same endings as the library
    ended = r["term"] | r["trunc"]
    np.testing.assert_array_equal(r["obs"][~ended], r["lib_obs"][~ended])
    # The auto-reset, same step: the library's fresh player (inventory, intrinsics, direction). Its
    # world generation is not bit-reproducible across compilations (float noise flips blocks), so
    # the map part is not compared; the time-limit test sees the library's step counter restart.
    reset_obs = r["obs"][ended][:, MAP_SIZE:]
    np.testing.assert_allclose(reset_obs, r["lib_reset_obs"][:, MAP_SIZE:], atol=1e-6)
    assert (r["lib_obs"][ended][:, MAP_SIZE:] != reset_obs).any(axis=1).mean() > 0.5  # tells reset apart


def test_craftax_time_limit_is_truncation_on_exactly_the_limit_step(rollout):
    r = rollout
    at_limit = r["lib_timestep"] >= LIMIT  # the library's own step counter
    np.testing.assert_array_equal(r["trunc"], at_limit)
    assert not r["term"][at_limit].any()
    for i in range(2, NUM_ENVS):  # random play rarely dies in LIMIT steps: count the ones that did not
        ends = np.flatnonzero(r["term"][:, i] | r["trunc"][:, i])
        if not r["term"][:, i].any():
            np.testing.assert_array_equal(ends, np.arange(LIMIT - 1, NUM_STEPS, LIMIT))


def test_craftax_death_is_termination(rollout):
    r = rollout
    assert r["term"][0, DIES] and not r["trunc"][0, DIES]
    assert r["reward"][0, DIES] <= -0.1 + 1e-6  # the health point lost (Classic's reward: 0.1 per point)
    # A death on exactly the limit step reads as truncated (LegacyStep cannot split a `done` there).
    assert r["lib_done"][0, DIES_AT_LIMIT] and r["trunc"][0, DIES_AT_LIMIT] and not r["term"][0, DIES_AT_LIMIT]


@pytest.mark.parametrize("name", envs.suites.suite_of("craftax/").names)
def test_every_listed_craftax_name_passes_check_env(name):
    env, params = envs.make("craftax/" + name)
    envs.check_env(env, params)


def test_craftax_refuses_a_nested_parameter_and_an_unknown_name():
    with pytest.raises(ValueError, match=r"max_steps_in_episode is a int"):
        envs.make(ENV_ID, max_steps_in_episode=1.5)
    with pytest.raises(ValueError, match=r"craftax/Craftax-Pixels-v1.*not one of the craftax environments"):
        envs.make("craftax/Craftax-Pixels-v1")


def test_building_craftax_prints_nothing():
    code = f"import envs; env, p = envs.make({ENV_ID!r}); env.observation_space(p)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "" and done.stderr == ""


@pytest.mark.slow  # trains through the whole program: run with -m slow
def test_craftax_training_smoke_run():
    smoke_train(ENV_ID, num_envs=2, num_steps=8, updates=2)
