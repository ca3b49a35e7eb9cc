"""PRNG streams: every consumer of randomness gets its own key, `purejaxvpg eval` never
reuses a training key, seed i's key does not depend on the number of seeds, and a bad
seed or key argument is a ValueError naming it, before anything compiles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import Compiles, forbid_jit

import purejaxvpg as pjv
from purejaxvpg.algo import prng, program, rollout
from purejaxvpg.algo.program import Agent, HyperParams
from purejaxvpg.host import policy, session

# 4 updates, an evaluation after each
CONFIG = pjv.Config(env_id="CartPole-v1", total_steps=2 * 16 * 4, num_envs=2, num_steps=16,
                    hidden_sizes=(16,), eval_every=1, eval_episodes=1)
BASE_SEEDS, NUM_SEEDS = (0, 1, 7), 3


def _data(key_array) -> np.ndarray:
    """Key data as rows [n, key words]."""
    data = np.asarray(jax.random.key_data(key_array))
    return data.reshape(-1, data.shape[-1])


def _assert_no_duplicates(rows: np.ndarray):
    unique = np.unique(rows, axis=0)
    assert len(unique) == len(rows), f"{len(rows) - len(unique)} keys used twice"


def _recording_make_evaluate(seen: list):
    """A stand-in for evaluate.make_evaluate whose evaluation records the key it is
    given (from inside the compiled program) and plays no episode."""
    from purejaxvpg.algo.metrics import EvalMetrics

    def make_evaluate(*args, **kwargs):
        def evaluate(params, env_state, key):
            jax.debug.callback(lambda d: seen.append(np.asarray(d)), jax.random.key_data(key))
            return EvalMetrics(**{name: jnp.zeros(()) for name in EvalMetrics.names()})

        return evaluate

    return make_evaluate


@pytest.fixture(scope="module")
def run_keys():
    """Every seed of every base seed: the initial state, what each named stream alone
    gives its consumer (same compiled call, so bitwise comparable), the final runner key
    and the keys the in-run evaluations received."""
    seen = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(program, "make_evaluate", _recording_make_evaluate(seen))
        agent = Agent.build(CONFIG)
    hp = HyperParams.from_config(CONFIG)
    dummy = jnp.zeros((1, *agent.stack.obs_shape))

    def one_seed(key):
        streams = prng.RunStreams.of(key)
        expected = (agent.actor.init(streams.actor, dummy), agent.critic.init(streams.critic, dummy),
                    rollout.reset(agent.stack.env, agent.stack.env_params, streams.env).key,
                    streams.evaluation)
        final, _, _ = program.train(agent, hp, key)
        return program.init(agent, hp, key), expected, final.runner.key

    train_keys = jnp.concatenate([pjv.seed_keys(b, NUM_SEEDS) for b in BASE_SEEDS])
    states, expected, final_runner_keys = jax.jit(jax.vmap(one_seed))(train_keys)
    eval_keys = np.stack(seen)
    assert len(eval_keys) == len(train_keys) * CONFIG.num_evals
    return train_keys, states, expected, final_runner_keys, eval_keys


def test_program_init_feeds_each_stream_to_its_own_consumer(run_keys):
    _, states, (actor_params, critic_params, runner_key, eval_key), _, _ = run_keys
    jax.tree.map(np.testing.assert_array_equal, states.actor_params, actor_params)
    jax.tree.map(np.testing.assert_array_equal, states.critic_params, critic_params)
    np.testing.assert_array_equal(_data(states.runner.key), _data(runner_key))
    np.testing.assert_array_equal(_data(states.eval_key), _data(eval_key))


def test_every_stream_a_run_uses_is_distinct(run_keys):
    """Roots, seed keys, actor/critic init, environment, the runner's key after reset and
    after training, every in-run evaluation's key (as the evaluation received it) and
    `purejaxvpg eval`'s keys, over several base seeds: no key appears twice. (Before, the
    in-run evaluation key fold_in(key, 1) was the critic's split(key, 3)[1], and
    eval --seed 0 used seed 0's training keys.)"""
    train_keys, states, _, final_runner_keys, eval_keys = run_keys
    rows = [_data(train_keys), _data(states.runner.key), _data(states.eval_key),
            _data(final_runner_keys), eval_keys]
    for b in BASE_SEEDS:
        rows += [_data(prng.roots(b)), _data(prng.eval_keys(b, NUM_SEEDS))]
    for key in train_keys:
        streams = prng.RunStreams.of(key)
        rows += [_data(streams.actor), _data(streams.critic), _data(streams.env)]
    _assert_no_duplicates(np.concatenate(rows))


def test_cli_eval_uses_keys_disjoint_from_training(run_keys, tmp_path, monkeypatch):
    """`purejaxvpg eval --seed 0` (policy.evaluate_run) of a run trained with seed 0:
    the keys its episodes start from, caught inside the evaluation, are none of the
    run's keys. The run directory holds the initial states of seed_keys(0, 2)."""
    import purejaxvpg.algo.evaluate as evaluate_lib
    from purejaxvpg.host import rundir
    from purejaxvpg.host.checkpoint import Checkpoints

    train_keys, states, *_ = run_keys
    train_keys = train_keys[:2]  # = seed_keys(0, 2): seed i's key does not depend on n
    rundir.write_config(tmp_path, CONFIG, {"num_seeds": 2, "seed": 0})
    checkpoints = Checkpoints(tmp_path)
    checkpoints.save(1, jax.tree.map(lambda x: x[:2], states), {"env_steps": np.zeros((2, 1))})
    checkpoints.close()
    seen = []
    monkeypatch.setattr(evaluate_lib, "make_evaluate", _recording_make_evaluate(seen))
    policy.evaluate_run(tmp_path, episodes=1, seed=0)
    seen = np.stack(seen)  # one key per seed, in any order
    assert len(seen) == 2
    rows = [seen, _data(prng.roots(0)), _data(train_keys)]
    for key in train_keys:
        streams = prng.RunStreams.of(key)
        rows += [_data(streams.actor), _data(streams.critic), _data(streams.env), _data(streams.evaluation)]
    _assert_no_duplicates(np.concatenate(rows))
    np.testing.assert_array_equal(np.unique(seen, axis=0), np.unique(_data(prng.eval_keys(0, 2)), axis=0))


def test_seed_keys_do_not_depend_on_the_number_of_seeds():
    for fn in (pjv.seed_keys, prng.eval_keys):
        np.testing.assert_array_equal(_data(fn(5, 3)), _data(fn(5, 10)[:3]))
    # numpy integers are integers
    np.testing.assert_array_equal(_data(pjv.seed_keys(np.int64(5), np.int32(3))), _data(pjv.seed_keys(5, 3)))


@pytest.mark.parametrize("seed", [-1, 2**32, 99999999999999999999999, 1.5, True, "0"])
def test_bad_seed_is_refused_naming_it(seed):
    for call in (lambda: pjv.seed_keys(seed, 2), lambda: pjv.train(CONFIG, seed=seed),
                 lambda: session.RunOptions(seed=seed).validate(), lambda: prng.eval_keys(seed, 2)):
        with pytest.raises(ValueError, match=r"^seed: must be an integer >= 0 and <= 4294967295"):
            call()


@pytest.fixture
def no_compile(monkeypatch):
    forbid_jit(monkeypatch)


def test_numpy_integers_are_accepted_for_num_seeds_and_seed(no_compile):
    with pytest.raises(Compiles):
        pjv.train(CONFIG, num_seeds=np.int64(2), seed=np.uint32(4))
    session.RunOptions(num_seeds=np.int64(2), seed=np.int32(1)).validate()


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda: list(pjv.seed_keys(0, 2)), "got list"),
        (lambda: jax.random.key(0), "got shape ()"),
        (lambda: jax.random.split(jax.random.key(0), (2, 2)), "got shape (2, 2)"),
        (lambda: jax.random.split(jax.random.key(0), 0), "at least one"),
        (lambda: jnp.zeros((2, 3), jnp.uint32), "raw uint32 keys of shape [num_seeds, 2], got uint32 of shape (2, 3)"),
        (lambda: jnp.zeros((2, 2), jnp.float32), "got float32 of shape (2, 2)"),
    ],
)
def test_bad_keys_are_refused_naming_the_argument(bad, message, no_compile):
    with pytest.raises(ValueError, match=r"^keys: must be") as info:
        pjv.train(CONFIG, keys=bad())
    assert message in str(info.value)


def test_raw_uint32_keys_are_the_typed_keys_they_hold(no_compile):
    typed = pjv.seed_keys(0, 3)
    np.testing.assert_array_equal(_data(prng.check_keys(jax.random.key_data(typed))), _data(typed))
    with pytest.raises(Compiles):
        pjv.train(CONFIG, keys=jax.random.key_data(typed))
