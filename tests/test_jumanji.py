"""The Jumanji adapter keeps the contract, against the real package (runs where the jumanji extra is installed).

References are the raw library's own TimeSteps (jumanji.make, stepped directly) and observations
flattened here in numpy, field by field, not by the adapter's code.
"""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import smoke_train

from purejaxvpg import envs

pytest.importorskip("jumanji")
import jumanji  # noqa: E402
from jumanji import specs  # noqa: E402
from jumanji.environments import Maze  # noqa: E402

from purejaxvpg.envs import jumanji_adapter  # noqa: E402

LISTED = envs.suites.suite_of("jumanji/").names
NUM_ENVS, NUM_STEPS, SNAKE_LIMIT = 64, 1000, 40
LAST = 2  # dm_env.StepType.LAST


def maze_flat(obs) -> np.ndarray:
    """Maze's Observation in field order: agent (row, col), target (row, col), walls, action_mask, step_count."""
    parts = [obs.agent_position.row, obs.agent_position.col, obs.target_position.row, obs.target_position.col,
             obs.walls, obs.action_mask, obs.step_count]
    return np.concatenate([np.asarray(p, np.float32).reshape(-1) for p in parts])


def snake_flat(obs, batch=()) -> jax.Array:
    """Snake's Observation in field order: grid (12, 12, 5), step_count, action_mask (4)."""
    parts = [obs.grid, obs.step_count, obs.action_mask]
    return jnp.concatenate([jnp.asarray(p, jnp.float32).reshape(*batch, -1) for p in parts], axis=-1)


def player(env):
    """jit((params, key, actions) -> per step (obs, terminated, truncated, final)): the adapter, one
    environment, a fixed action sequence; params are an argument, so one compile serves every limit."""

    def run(params, key, actions):
        def step(state, inputs):
            key, action = inputs
            obs, state, _, term, trunc, info = env.step(key, state, action, params)
            return state, (obs, term, trunc, info["final_observation"])

        _, state = env.reset(key, params)
        keys = jax.random.split(jax.random.fold_in(key, 1), len(actions))
        return jax.lax.scan(step, state, (keys, actions))[1]

    compiled = jax.jit(run)
    return lambda params, key, actions: jax.tree.map(np.asarray, compiled(params, key, actions))


def library_play(library_env, key, actions):
    """The raw library from the same key: per step (observation, step_type, discount, reward)."""

    def step(state, action):
        state, timestep = library_env.step(state, action)
        return state, (timestep.observation, timestep.step_type, timestep.discount, timestep.reward)

    state, _ = library_env.reset(jax.random.key_data(key))
    return jax.tree.map(np.asarray, jax.jit(lambda s: jax.lax.scan(step, s, actions)[1])(state))


def test_listed_names_are_the_single_agent_discrete_or_box_environments():
    """Independently of the adapter: every registered Jumanji id (Sokoban-v0 aside: its levels are a
    download) with one scalar reward and a DiscreteArray or float BoundedArray action spec, and nothing else."""
    supported = []
    for name in sorted(jumanji.registered_environments() - {"Sokoban-v0"}):
        library_env = jumanji.make(name)
        spec = library_env.action_spec
        box = type(spec) is specs.BoundedArray and np.issubdtype(spec.dtype, np.floating)
        if library_env.reward_spec.shape == () and (type(spec) is specs.DiscreteArray or box):
            supported.append(name)
    assert sorted(LISTED) == supported
    assert {"jumanji/" + n for n in LISTED} <= set(envs.registered())


@pytest.mark.parametrize("name", LISTED)
def test_check_env_passes_for_every_listed_name(name):
    env, params = envs.make("jumanji/" + name)
    envs.check_env(env, params)
    library_env = jumanji.make(name)
    assert env.action_space(params).n == library_env.action_spec.num_values
    assert params.max_steps_in_episode == getattr(library_env, "time_limit", jumanji_adapter.FALLBACK_LIMIT)


@pytest.mark.parametrize(("name", "named"), [
    ("Minesweeper-v0", "MultiDiscreteArray action spec"),
    ("MultiCVRP-v0", "BoundedArray action spec (shape [2], dtype int16)"),
    ("SearchAndRescue-v0", "multi-agent environment (reward spec of shape [2])"),
])
def test_unsupported_specs_are_refused_by_name(name, named):
    with pytest.raises(ValueError) as error:
        envs.make("jumanji/" + name)
    assert f"jumanji/{name}" in str(error.value) and named in str(error.value)


def test_a_float_bounded_array_action_spec_is_a_box():
    """No listed environment has one (SearchAndRescue's is multi-agent); the mapping itself, on real specs."""
    library_env = types.SimpleNamespace(
        reward_spec=specs.Array((), jnp.float32),
        action_spec=specs.BoundedArray((2,), jnp.float32, minimum=-1.0, maximum=jnp.array([1.0, 2.0])),
    )
    box = jumanji_adapter._action_space("Fake-v0", library_env)
    assert box.shape == (2,) and box.dtype == jnp.float32
    np.testing.assert_array_equal(box.low, [-1.0, -1.0])
    np.testing.assert_array_equal(box.high, [1.0, 2.0])
    spec = envs.action_spec(types.SimpleNamespace(action_space=lambda params: box), None)
    assert not spec.discrete and spec.shape == (2,) and spec.high.tolist() == [1.0, 2.0]


def test_an_unknown_id_lists_the_supported_ones():
    with pytest.raises(ValueError, match="jumanji/NoSuch-v0 is not a Jumanji environment") as error:
        envs.make("jumanji/NoSuch-v0")
    assert all(f"jumanji/{n}" in str(error.value) for n in LISTED)


def test_contract_1000_random_steps_64_snakes_against_the_raw_library():
    """Random play with a 40-step limit: snakes that crash are terminated (the library's LAST with
    discount 0), snakes that live 40 steps truncated; observations are the library's."""
    env, params = envs.make("jumanji/Snake-v1", max_steps_in_episode=SNAKE_LIMIT)
    vec = envs.VecEnv(envs.EpisodeStatistics(env), NUM_ENVS)

    def rollout(key):
        obs, state = vec.reset(key, params)

        def step(carry, key):
            state = carry
            key_act, key_env = jax.random.split(key)
            action = jax.random.randint(key_act, (NUM_ENVS,), 0, 4)
            lib = state.env_state
            _, raw = jax.vmap(env._env.step)(lib.library, action)
            raw_obs = snake_flat(raw.observation, (NUM_ENVS,))
            obs, state, reward, term, trunc, info = vec.step(key_env, state, action, params)
            ended = term | trunc
            gap = lambda a, where: jnp.max(jnp.where(where[:, None], jnp.abs(a - raw_obs), 0.0))  # noqa: E731
            raw_term = (raw.step_type == LAST) & (raw.discount == 0)
            return state, dict(
                term=term, trunc=trunc, raw_term=raw_term, at_limit=lib.time + 1 == SNAKE_LIMIT,
                final_gap=gap(info["final_observation"], ended), next_gap=gap(obs, ~ended),
                reward_gap=jnp.max(jnp.abs(reward - raw.reward)), obs_dtype=obs.dtype == jnp.float32,
                finite=jnp.all(jnp.isfinite(obs)) & jnp.all(jnp.isfinite(reward)),
                reset_count=jnp.where(ended, obs[:, 720], -1.0),  # step_count of the new episode
            )

        return jax.lax.scan(step, state, jax.random.split(key, NUM_STEPS))[1]

    out = jax.tree.map(np.asarray, jax.jit(rollout)(jax.random.key(0)))
    term, trunc = out["term"], out["trunc"]
    assert term.dtype == bool and trunc.dtype == bool and term.shape == (NUM_STEPS, NUM_ENVS)
    assert out["obs_dtype"].all() and out["finite"].all()
    assert term.sum() > 100 and trunc.sum() > 100, "both endings must occur"
    assert not (term & trunc).any()
    np.testing.assert_array_equal(term, out["raw_term"])
    np.testing.assert_array_equal(trunc, out["at_limit"] & ~out["raw_term"])
    assert out["final_gap"].max() == 0.0 and out["next_gap"].max() == 0.0 and out["reward_gap"].max() == 0.0
    assert (out["reset_count"][term | trunc] == 0).all()  # auto-reset: the next episode starts at step 0


@pytest.fixture(scope="module")
def maze():
    """Maze-v0 from key 0, always action 0 (the agent never reaches the target): the adapter's
    player, and the registered library's own first 100 steps."""
    env, params = envs.make("jumanji/Maze-v0")
    key, actions = jax.random.key(0), jnp.zeros(150, jnp.int32)
    raw = library_play(jumanji.make("Maze-v0"), key, actions[:100])  # the registered id, its own limit
    assert raw[3].sum() == 0, "the scripted agent must not reach the target"
    return env, params, player(env), key, actions, raw


def raw_at(raw_obs, t):
    return maze_flat(jax.tree.map(lambda x: x[t], raw_obs))


def test_the_library_time_limit_is_truncated_with_its_final_observation(maze):
    """Maze-v0's own limit (100 steps) is the default; the library ends it with discount 0 (as it
    ends a real termination), the adapter reports truncated on exactly step 100."""
    env, params, play, key, actions, (raw_obs, step_type, discount, _) = maze
    assert params.max_steps_in_episode == 100
    obs, term, trunc, final = play(params, key, actions)
    assert (step_type[-1], discount[-1]) == (LAST, 0.0) and (step_type[:-1] != LAST).all()
    assert not term.any() and np.flatnonzero(trunc).tolist() == [99]
    np.testing.assert_array_equal(final[99], raw_at(raw_obs, 99))
    assert final[99][-1] == 100 and obs[99][-1] == 0  # step_count: the ended episode's, the new one's
    np.testing.assert_array_equal(obs[50], raw_at(raw_obs, 50))


@pytest.mark.parametrize("limit", [7, 150])
def test_an_overridden_time_limit_is_the_only_limit(maze, limit):
    env, params, play, key, actions, (raw_obs, *_) = maze
    params = envs.registry.apply_params("jumanji/Maze-v0", params, {"max_steps_in_episode": limit})
    obs, term, trunc, final = play(params, key, actions)
    assert np.flatnonzero(term | trunc)[0] == limit - 1 and trunc[limit - 1] and not term[limit - 1]
    assert final[limit - 1][-1] == limit and obs[limit - 1][-1] == 0
    if limit < 100:
        np.testing.assert_array_equal(final[limit - 1], raw_at(raw_obs, limit - 1))


def test_a_crash_is_terminated_and_wins_over_the_limit_on_the_same_step():
    key, actions = jax.random.key(3), jnp.zeros(12, jnp.int32)  # straight up into the wall
    raw_obs, step_type, discount, _ = library_play(jumanji.make("Snake-v1"), key, actions)
    crash = int(np.argmax(step_type == LAST))
    assert step_type[crash] == LAST and discount[crash] == 0.0
    env, params = envs.make("jumanji/Snake-v1")
    play = player(env)
    for limit in (4000, crash + 1):  # the library's limit, and a limit on the crash step itself
        obs, term, trunc, final = play(params.replace(max_steps_in_episode=limit), key, actions)
        assert term[crash] and not trunc[:crash + 1].any() and not term[:crash].any()
        raw_final = snake_flat(jax.tree.map(lambda x: x[crash], raw_obs))
        np.testing.assert_array_equal(final[crash], np.asarray(raw_final))


class TruncatingMaze(Maze):
    """A Jumanji environment that signals its time limit as Connector-v3 and LevelBasedForaging do:
    LAST with discount 1 (Jumanji's `truncation`)."""

    def step(self, state, action):
        state, timestep = super().step(state, action)
        limit = (state.step_count >= self.time_limit) & (timestep.reward == 0)
        return state, timestep.replace(discount=jnp.where(limit, 1.0, timestep.discount).astype(jnp.float32))


def test_a_library_truncation_discount_1_is_truncated_not_terminated(maze):
    *_, key, actions, (raw_obs, *_) = maze  # the same maze and moves: TruncatingMaze is Maze-v0 until step 5
    env = jumanji_adapter.JumanjiEnv("Maze-v0", TruncatingMaze(time_limit=5), time_limit=1000)
    obs, term, trunc, final = player(env)(env.default_params, key, actions[:10])
    assert np.flatnonzero(term | trunc)[0] == 4 and trunc[4] and not term[4]
    np.testing.assert_array_equal(final[4], raw_at(raw_obs, 4))


@pytest.mark.slow  # trains through the whole program: run with -m slow
def test_jumanji_training_smoke_run():
    result = smoke_train("jumanji/Snake-v1", num_envs=4, num_steps=16, updates=3)
    assert result.metrics["episodes_finished"].sum() > 0
