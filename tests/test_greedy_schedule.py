"""The greedy-action schedule (issue 12 part 2): p(k) against its closed form, the default run
unchanged bit for bit, the mode at p = 1, the observed fraction within a binomial interval,
the policy step with greedy steps excluded or kept, sweeps over the schedule's numbers."""

import dataclasses
import functools
import json
import math
import re
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxvpg as pjv
from purejaxvpg.algo import greedy, losses, prng, program, rollout
from purejaxvpg.algo.distributions import Categorical
from purejaxvpg.host import rundir
from purejaxvpg.tools import cli, flags, sweep
from purejaxvpg.tools.parser import build_parser

GOLDEN = json.loads((Path(__file__).parent / "data" / "greedy-off-golden.json").read_text())
TINY = dict(GOLDEN["config"], hidden_sizes=tuple(GOLDEN["config"]["hidden_sizes"]))


def _closed_form(shape, start, end, k, n):
    """p(k) written from the definition (greedy.py's docstring), in numpy float64."""
    big_k = max(n - 1, 1)
    if shape == "linear":
        return start + (end - start) * min(k, big_k) / big_k
    return end + (start - end) * (1 + math.cos(math.pi * min(k, big_k) / big_k)) / 2


@pytest.mark.parametrize("shape", ["linear", "cosine"])
@pytest.mark.parametrize("start, end, updates", [(0.0, 0.5, 5), (0.9, 0.2, 7), (0.3, 0.3, 4), (0.4, 1.0, 1)])
def test_schedule_value_at_update_k_is_the_closed_form(shape, start, end, updates):
    config = pjv.Config(total_steps=512 * updates, greedy_start=start, greedy_end=end, greedy_schedule=shape)
    assert config.num_updates == updates
    for k in range(updates):
        got = float(greedy.probability(config, start, end, jnp.int32(k)))
        assert got == pytest.approx(_closed_form(shape, start, end, k, updates), abs=1e-6), (k, got)
    assert float(greedy.probability(config, start, end, 0)) == pytest.approx(start, abs=1e-7)
    if updates > 1:
        assert float(greedy.probability(config, start, end, updates - 1)) == pytest.approx(end, abs=1e-6)


@pytest.fixture(scope="module")
def default_cartpole():
    """The golden file's CartPole run, by a config that does not mention the greedy fields."""
    return pjv.train(pjv.Config(env_id="CartPole-v1", **TINY), num_seeds=GOLDEN["num_seeds"], seed=GOLDEN["seed"])


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the golden metrics are CPU results")
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_default_run_is_the_code_before_the_schedule_bit_for_bit(env_id, default_cartpole):
    if env_id == "CartPole-v1":
        result = default_cartpole
    else:
        result = pjv.train(pjv.Config(env_id=env_id, **TINY), num_seeds=GOLDEN["num_seeds"], seed=GOLDEN["seed"])
    golden = GOLDEN["metrics"][env_id]
    for name, rows in golden.items():
        expected = np.array([[float.fromhex(x) for x in row] for row in rows])
        got = np.asarray(result.metrics[name], np.float64)
        if _recorded_here():  # same jax, same CPU model: bit for bit
            np.testing.assert_array_equal(got, expected, err_msg=name)
        else:  # XLA's CPU code differs between CPU models and versions in the last bits
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(result.metrics["greedy_fraction"], 0.0)
    # and the program flips no coin (equal values alone would not show it: at p = 0 the
    # coin never wins): fewer random draws than the same run with a schedule
    def draws(config):
        return str(jax.make_jaxpr(program.make_train(config))(pjv.seed_keys(0, 1)[0])).count("random_bits")
    config = pjv.Config(env_id=env_id, **TINY)
    assert draws(config) < draws(dataclasses.replace(config, greedy_end=0.5))


def _recorded_here() -> bool:
    """Whether this machine matches the one the golden metrics were recorded on: the jax
    version, the CPU's model name, family and model number. (The golden file records the
    name alone, 'AMD EPYC', which two CPU generations share: a Zen 5 machine, family 26,
    computes the same runs to within one unit in the last place but not bit for bit, so
    without the family and model it is compared to the tolerance.)"""
    try:
        fields = dict(line.split(":", 1) for line in open("/proc/cpuinfo").read().split("\n\n")[0].splitlines()
                      if ":" in line)
    except OSError:
        return False
    here = {"jax": jax.__version__, "cpu": fields.get("model name\t", "").strip(),
            "cpu_family": fields.get("cpu family\t", "").strip(), "cpu_model": fields.get("model\t\t", "").strip()}
    return GOLDEN["recorded_on"] == here


STEPS, ENVS = 16, 8


@functools.lru_cache
def _collector(env_id):
    """(agent, jitted collect(params, runner, p)) for a tiny actor: compiled once per env and
    per p being a number or None."""
    agent = program.Agent.build(pjv.Config(env_id=env_id, num_envs=ENVS, hidden_sizes=(8,)).validate())
    stack = agent.stack
    collect = jax.jit(lambda params, r, p: rollout.collect(
        lambda obs: agent.actor.apply(params, obs), stack.env, stack.env_params, stack.spec, r, STEPS, greedy=p))
    return agent, collect


def _rollout(env_id, p, seed=0):
    """(agent, actor params, runner before, batch) of one rollout of a fresh policy; greedy
    probability p (None: no coin, the default program)."""
    agent, collect = _collector(env_id)
    actor_key, env_key = jax.random.split(jax.random.key(seed))
    params = agent.actor.init(actor_key, jnp.zeros((1, *agent.stack.obs_shape)))
    runner = rollout.reset(agent.stack.env, agent.stack.env_params, env_key)
    return agent, params, runner, collect(params, runner, p)[1]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_probability_one_takes_the_mode_at_every_step(env_id):
    agent, params, _, batch = _rollout(env_id, 1.0)
    dist = agent.actor.apply(params, batch.obs.reshape(-1, *batch.obs.shape[2:]))
    actions = np.asarray(batch.action).reshape(-1, *batch.action.shape[2:])
    if isinstance(dist, Categorical):  # the argmax of the policy at each observation
        np.testing.assert_array_equal(actions, np.argmax(np.asarray(dist.logits), axis=-1))
    else:  # the Gaussian's mean
        np.testing.assert_allclose(actions, np.asarray(dist.mean), rtol=1e-6, atol=1e-6)
    assert np.asarray(batch.greedy).all()


def test_the_coin_has_its_own_key_and_leaves_the_samples_unchanged():
    """Flags come from the fourth child of each step's split (prng.step_keys), not the action
    key; the steps that sample draw exactly what a run without the schedule draws."""
    p = 0.5
    _, _, runner, batch = _rollout("CartPole-v1", p)
    key, expected = runner.key, []
    for _ in range(STEPS):  # the documented stream layout, written out with jax.random
        key, _action, _env, coin = jax.random.split(key, 4)
        expected.append(np.asarray(jax.random.uniform(coin, (ENVS,))) < p)
    greedy = np.asarray(batch.greedy)
    np.testing.assert_array_equal(greedy, np.array(expected))
    assert 0 < greedy.sum() < greedy.size
    # the first three children are those of the split without the coin
    k = jax.random.key(7)
    np.testing.assert_array_equal(jax.random.key_data(prng.step_keys(k, True)[:3]),
                                  jax.random.key_data(prng.step_keys(k, False)))
    # at p = 0 (the coin never wins) the rollout is the one without the coin, step for step
    _, _, _, never = _rollout("CartPole-v1", 0.0)
    _, _, _, plain = _rollout("CartPole-v1", None)
    assert plain.greedy is None and not np.asarray(never.greedy).any()
    chex.assert_trees_all_equal(never.replace(greedy=None), plain)


LINEAR = pjv.Config(env_id="CartPole-v1", **TINY, greedy_start=0.0, greedy_end=1.0)  # p = 0, 1/3, 2/3, 1


@pytest.fixture(scope="module")
def linear_run():
    return pjv.train(LINEAR, num_seeds=GOLDEN["num_seeds"], seed=GOLDEN["seed"])


def test_observed_fraction_follows_the_schedule_within_a_binomial_interval(linear_run):
    """Linear 0 -> 1 over 4 updates: exactly 0 at update 0 and 1 at update 3 (the coin is
    u < p, u in [0, 1)), Binomial(n, p(k)) / n in between, n the flips of all seeds."""
    fractions = linear_run.metrics["greedy_fraction"]
    np.testing.assert_array_equal(fractions[:, 0], 0.0)
    np.testing.assert_array_equal(fractions[:, -1], 1.0)
    n = fractions.shape[0] * LINEAR.batch_size
    for k in range(LINEAR.num_updates):
        p, observed = _closed_form("linear", 0.0, 1.0, k, LINEAR.num_updates), fractions[:, k].mean()
        half_width = 4.0 * math.sqrt(p * (1 - p) / n)  # 4 standard deviations: a false alarm ~ 6e-5
        assert abs(observed - p) <= half_width + 1e-9, (k, observed, p)


def test_excluded_greedy_steps_leave_the_policy_gradient_the_closed_form():
    """Tabular softmax policy: with a 0/1 mask, d loss / d logits[s] = -(1/|S|) sum over the
    weighted steps at s of A_t (onehot(a_t) - softmax(logits[s])), written out in numpy."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4)).astype(np.float32)
    states, actions = rng.integers(0, 3, 40), rng.integers(0, 4, 40)
    adv, used = rng.normal(size=40).astype(np.float32), rng.random(40) < 0.6

    def loss(table):
        return losses.policy_gradient_loss(Categorical(table[states]), jnp.asarray(actions), jnp.asarray(adv),
                                           0.0, jnp.asarray(used))[0]

    grad = np.asarray(jax.grad(loss)(jnp.asarray(logits)))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = np.zeros_like(logits)
    for t in np.flatnonzero(used):
        expected[states[t]] -= adv[t] * (np.eye(4)[actions[t]] - probs[states[t]]) / used.sum()
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)
    # advantages standardised over the steps the loss uses
    normal = np.asarray(losses.normalize(jnp.asarray(adv), jnp.asarray(used)))[used]
    np.testing.assert_allclose(normal, (adv[used] - adv[used].mean()) / (adv[used].std() + 1e-8), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["exclude", "keep"])
def test_all_greedy_steps_excluded_or_kept_in_the_policy_step(mode):
    """p = 1 throughout: excluded, the policy gets no gradient (ent_coef 0) while the critic
    still learns; kept, the policy moves (towards or away from its own mode)."""
    config = pjv.Config(env_id="CartPole-v1", total_steps=4 * 16 * 2, num_envs=4, num_steps=16, hidden_sizes=(8,),
                        greedy_start=1.0, greedy_end=1.0, greedy_policy_loss=mode)
    key = pjv.seed_keys(0, 1)[0]
    agent, hp = program.Agent.build(config.validate()), program.HyperParams.from_config(config)
    before = program.init(agent, hp, key)
    after, metrics, _ = jax.jit(lambda k: program.train(agent, hp, k))(key)
    np.testing.assert_array_equal(metrics.greedy_fraction, 1.0)
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before.actor_params, after.actor_params)
    assert not any(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.all(a == b)),
                                                before.critic_params, after.critic_params)))
    if mode == "exclude":
        np.testing.assert_array_equal(metrics.policy_grad_norm, 0.0)
        assert not any(jax.tree.leaves(moved))
    else:
        assert (np.asarray(metrics.policy_grad_norm) > 0).all() and all(jax.tree.leaves(moved))


def test_the_policy_step_gets_the_sampled_steps_with_advantages_standardised_over_them(monkeypatch):
    """A spy in place of losses.policy_step reports, per update, the weighted mean and std of
    the advantages it is given and the share of steps of weight 1: 0, 1 and 1 - greedy_fraction."""
    real = losses.policy_step

    def spy(*args, mask=None):
        params, opt_state, stats = real(*args, mask=mask)
        advantages, used = args[6], mask.astype(jnp.float32)
        mean = jnp.sum(used * advantages) / jnp.sum(used)
        std = jnp.sqrt(jnp.sum(used * (advantages - mean) ** 2) / jnp.sum(used))
        return params, opt_state, stats.replace(loss=mean, entropy=std, approx_kl=used.mean())

    monkeypatch.setattr(losses, "policy_step", spy)
    config = pjv.Config(env_id="CartPole-v1", **TINY, greedy_start=0.5, greedy_end=0.5)
    metrics = pjv.train(config, num_seeds=1, seed=0).metrics
    np.testing.assert_allclose(metrics["policy_loss"], 0.0, atol=1e-5)
    np.testing.assert_allclose(metrics["entropy"], 1.0, rtol=1e-4)
    np.testing.assert_allclose(metrics["approx_kl"], 1.0 - metrics["greedy_fraction"], atol=1e-6)
    assert (metrics["greedy_fraction"] > 0).all()


def test_a_sweep_batches_the_schedule_and_each_setting_equals_its_separate_run(default_cartpole, linear_run):
    settings = [{"greedy_end": 0.0}, {"greedy_end": 1.0}]
    swept = sweep.run(pjv.Config(env_id="CartPole-v1", **TINY), settings, num_seeds=2, seed=3, reps=50)
    for index, metrics in enumerate([default_cartpole.metrics, linear_run.metrics]):
        rows = slice(2 * index, 2 * index + 2)
        setting = {name: values[rows] for name, values in swept.result.metrics.items()}
        chex.assert_trees_all_close(setting, metrics, rtol=2e-4, atol=2e-4)
    assert (swept.result.metrics["greedy_fraction"][2:, 1:] > 0).all()  # the second setting is greedy


def test_fields_are_validated_parsed_and_read_back(tmp_path):
    for field, value, allowed in [("greedy_start", 1.5, "[0, 1]"), ("greedy_end", -0.1, "[0, 1]"),
                                  ("greedy_schedule", "exp", "linear, cosine"),
                                  ("greedy_policy_loss", "drop", "exclude, keep")]:
        with pytest.raises(ValueError, match=rf"^{field}: must .*{re.escape(allowed)}"):
            pjv.Config(**{field: value}).validate()
    with pytest.raises(ValueError, match=r"^hparams.greedy_end: must be in \[0, 1\]"):
        columns = {n: [getattr(pjv.Config(), n)] for n in pjv.config.SWEEPABLE}
        hp = program.HyperParams(**columns | {"greedy_end": [2.0]})
        pjv.train(pjv.Config(**TINY), keys=pjv.seed_keys(0, 1), hparams=hp)
    args = build_parser().parse_args(["train", "--greedy-start", "0.1", "--greedy-end", "0.5",
                                          "--greedy-schedule", "cosine", "--greedy-policy-loss", "keep"])
    config = flags.config_from_args(args)
    assert (config.greedy_start, config.greedy_end, config.greedy_schedule, config.greedy_policy_loss) == (
        0.1, 0.5, "cosine", "keep")
    assert cli.main(["train", "--greedy-end", "3", "--out", str(tmp_path / "bad")]) == 2
    rundir.write_config(tmp_path, config, {})
    assert rundir.read_config(tmp_path)[0] == config
    old = json.loads((tmp_path / "config.json").read_text())
    for name in ("greedy_start", "greedy_end", "greedy_schedule", "greedy_policy_loss"):
        del old["config"][name]
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert rundir.read_config(tmp_path)[0] == dataclasses.replace(
        config, greedy_start=0.0, greedy_end=0.0, greedy_schedule="linear", greedy_policy_loss="exclude")
