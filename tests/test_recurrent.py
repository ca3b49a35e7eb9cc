"""recurrent = 'gru': the hidden state a rollout carries, checked against a step-by-step
reference that resets it by hand where episodes end (termination and truncation) and carries
it across rollouts; the update's recomputation against the states that chose the actions;
the memory task a GRU solves and an MLP cannot; resume, the policy API and the estimate."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxvpg as pjv
from purejaxvpg import envs
from purejaxvpg.algo import program, recurrent, rollout
from purejaxvpg.algo.prng import to_data
from purejaxvpg.host import memory, session

# CartPole cut at 15 steps: in three rollouts of 8 steps episodes end by termination and by
# truncation, and run on across the rollout boundaries
SHORT = pjv.Config(env_id="CartPole-v1", env_params=(("max_steps_in_episode", 15),), total_steps=16 * 8 * 6,
                   num_envs=16, num_steps=8, recurrent="gru", recurrent_size=8, hidden_sizes=(16,))
# the known-answer memory task (envs/known.py): episodes of 4 steps, rollouts of 6, so most
# episodes span two rollouts and a hidden state dropped between them loses the cue
MEMORY = pjv.Config(env_id="MemoryCue-known", total_steps=8 * 6 * 100, num_envs=8, num_steps=6,
                    eval_episodes=64, policy_lr=3e-3, recurrent="gru", recurrent_size=32)


def _reference(agent, params, hidden0, obs, done):
    """h_t [T, E, H] and the distributions, one actor step at a time: the state set to zeros
    by hand where the previous step ended an episode (`done`), never by the network's flag."""
    h, hs, never = hidden0, [], jnp.zeros(obs.shape[1], bool)
    for t in range(obs.shape[0]):
        if t > 0:
            h = jnp.where(done[t - 1][:, None], 0.0, h)
        h, _ = agent.actor.apply(params, h, obs[t], never)
        hs.append(h)
    return jnp.stack(hs)


def test_the_hidden_state_resets_at_terminations_and_truncations_and_carries_across_rollouts():
    agent = program.Agent.build(SHORT.validate())
    state = program.init(agent, program.HyperParams.from_config(SHORT), jax.random.key(3))
    collect = jax.jit(lambda r: rollout.collect(program.acting(agent, state.actor_params), agent.stack.env,
                                                agent.stack.env_params, agent.stack.spec, r, SHORT.num_steps))
    runners, batches = [state.runner], []
    for _ in range(3):
        runner, batch = collect(runners[-1])
        runners.append(runner)
        batches.append(batch)
    obs = jnp.concatenate([b.obs for b in batches])
    done = jnp.concatenate([b.terminated | b.truncated for b in batches])
    truncated = jnp.concatenate([b.truncated for b in batches])
    assert (done & ~truncated).any() and truncated.any()  # both kinds of end occur
    assert (~done[8:16]).all(axis=0).any() or (~done[16:]).all(axis=0).any()  # an episode spans a whole rollout
    expected = _reference(agent, state.actor_params, state.runner.hidden.actor, obs, done)
    T = SHORT.num_steps
    for k, batch in enumerate(batches):
        # acting's state after each rollout, carried into the next one
        np.testing.assert_allclose(runners[k + 1].hidden.actor, expected[(k + 1) * T - 1], atol=1e-6)
        # the update's recomputation from the rollout's stored starting state
        hs = recurrent.unroll(agent.actor, state.actor_params, runners[k].hidden.actor, batch.obs, batch.first)
        np.testing.assert_allclose(hs, expected[k * T:(k + 1) * T], atol=1e-6)


@pytest.mark.parametrize("updates_before", [0, 3])
def test_the_update_recomputes_the_log_probs_that_chose_the_actions(monkeypatch, updates_before):
    """At the first update and later ones (a nonzero stored state): the log-probabilities the
    policy loss differentiates equal the step-by-step actor's from the rollout's start, 1e-6."""
    agent = program.Agent.build(SHORT.validate())
    hp = program.HyperParams.from_config(SHORT)
    state = program.init(agent, hp, jax.random.key(5))
    for _ in range(updates_before):
        state, _ = jax.jit(lambda s: program.update(agent, hp, s))(state)
    seen = {}
    real_collect, real_step = program.rollout.collect, program.losses.policy_step

    def collect(*args, **kwargs):
        runner, batch = real_collect(*args, **kwargs)
        seen["batch"] = batch
        return runner, batch

    def policy_step(apply_actor, params, opt_state, optimizer, obs, actions, *rest, **kwargs):
        seen["log_probs"] = apply_actor(params, obs).log_prob(actions)
        return real_step(apply_actor, params, opt_state, optimizer, obs, actions, *rest, **kwargs)

    monkeypatch.setattr(program.rollout, "collect", collect)
    monkeypatch.setattr(program.losses, "policy_step", policy_step)

    def captured(state):  # what the wrappers saw, as outputs of the same compiled update
        program.update(agent, hp, state)
        return seen["batch"], seen["log_probs"]

    batch, log_probs = jax.jit(captured)(state)
    if updates_before:
        assert np.abs(state.runner.hidden.actor).max() > 0.01  # the stored state is not zeros
    done = batch.terminated | batch.truncated
    start = jnp.where(state.runner.first[:, None], 0.0, state.runner.hidden.actor)  # a first step starts at zeros
    hs = _reference(agent, state.actor_params, start, batch.obs, done)
    expected = recurrent.heads(agent.actor, state.actor_params, hs).log_prob(batch.action.reshape(-1))
    np.testing.assert_allclose(log_probs, expected, atol=1e-6)


def test_a_gru_solves_the_memory_task_on_every_seed():
    """All 8 seeds reach the optimum (1: the cue remembered) in 100 updates of 48 steps, where
    the MLP stays at chance (tests/test_memory_task.py)."""
    result = pjv.train(MEMORY, num_seeds=8, seed=0)
    np.testing.assert_array_equal(result.final_eval["eval_return_greedy"], 1.0)
    act = result.policy(0)  # the policy API carries the state, one episode at a time
    env, params = envs.make("MemoryCue-known")
    for episode in range(8):
        obs, env_state = env.reset(jax.random.key(episode), params)
        hidden = act.initial_state()
        for _ in range(params.delay + 1):
            action, hidden = act(obs, hidden)
            obs, env_state, reward, done, _, _ = env.step(jax.random.key(0), env_state, int(action), params)
        assert bool(done) and float(reward) == 1.0


def test_a_resumed_gru_run_ends_exactly_like_an_uninterrupted_one(tmp_path):
    config = dataclasses.replace(SHORT, eval_every=2, eval_episodes=2)
    options = session.RunOptions(num_seeds=2, log_every=2, checkpoint_every=2, progress=False)
    whole = session.run(config, options, tmp_path / "whole")
    session.run(config, options, tmp_path / "cut", stop_after=1)
    resumed = session.run(config, options, tmp_path / "cut", resume=True)
    chex.assert_trees_all_equal(resumed.metrics, whole.metrics)
    chex.assert_trees_all_equal(to_data(resumed.final_state), to_data(whole.final_state))


@pytest.mark.parametrize("config", [
    SHORT, dataclasses.replace(SHORT, env_id="Pendulum-v1", env_params=()),
    pjv.Config(env_id="Breakout-MinAtar", encoder="cnn", recurrent="gru", recurrent_size=8),
])
def test_the_memory_estimate_counts_the_networks_real_parameters(config):
    agent = program.Agent.build(config.validate())
    actor, critic = jax.eval_shape(agent.init_params, jax.random.key(0), jax.random.key(1))
    real = sum(np.prod(x.shape) for x in jax.tree.leaves((actor, critic)))
    log_std = agent.stack.spec.size if agent.stack.spec.discrete else 0  # counted whether learned or not
    assert memory.parameter_count(config, agent.stack.obs_shape, agent.stack.spec.size) == real + log_std


def test_bad_recurrent_settings_name_the_field():
    with pytest.raises(ValueError, match="recurrent: must be one of none, gru"):
        pjv.Config(recurrent="lstm").validate()
    with pytest.raises(ValueError, match="recurrent_size: must be an int >= 1"):
        pjv.Config(recurrent="gru", recurrent_size=0).validate()


def test_evaluation_starts_every_episode_from_a_fresh_state():
    """evaluate.make_play's greedy episodes against a step-by-step replay with the same keys
    from zero states, reset by hand where an episode ends: same returns and lengths."""
    from purejaxvpg.algo.evaluate import make_play

    config = dataclasses.replace(SHORT, eval_episodes=16, hidden_sizes=(4,))
    agent = program.Agent.build(config.validate())
    stack = agent.stack_of(16)
    params = agent.init_params(jax.random.key(7), jax.random.key(8))[0]
    params = jax.tree.map(lambda p: 30.0 * p, params)  # strong weights: actions follow the state
    steps = 20
    episodes = jax.jit(make_play(stack, agent.actor, steps), static_argnums=3)(params, None, jax.random.key(9), True)
    key, key_reset = jax.random.split(jax.random.key(9))
    obs, env_state = stack.env.reset(key_reset, stack.env_params)
    h, done = jnp.zeros((16, config.recurrent_size)), np.zeros(16, bool)
    returns, lengths, ended = np.zeros(16), np.zeros(16, int), np.zeros(16, bool)
    for _ in range(steps):
        key, _, key_env = jax.random.split(key, 3)
        h = jnp.where(done[:, None], 0.0, h)
        h, dist = agent.actor.apply(params, h, obs, jnp.zeros(16, bool))
        obs, env_state, reward, terminated, truncated, _ = stack.env.step(key_env, env_state, dist.mode(),
                                                                          stack.env_params)
        returns += np.where(ended, 0.0, np.asarray(reward))
        lengths += ~ended
        done = np.asarray(terminated | truncated)
        ended |= done
    np.testing.assert_array_equal(episodes.returns, returns)
    np.testing.assert_array_equal(episodes.lengths, lengths)


@pytest.mark.slow  # four processes that each compile
def test_a_gru_run_chunked_over_two_devices_equals_one_trained_at_once_and_evaluates(tmp_path):
    """The console script in fresh processes, from outside the checkout: 3 GRU seeds in
    chunks of 2 on 2 virtual devices end with the metrics of the 3 seeds on one device in
    one call (to the last float bits, as any program partitioned over devices: docs/devices.md);
    `eval` reads the joined run; a sweep over the GRU trains and ranks."""
    import os
    import subprocess

    common = ["--env-id", "CartPole-v1", "--recurrent", "gru", "--recurrent-size", "8", "--num-envs", "4",
              "--num-steps", "16", "--total-steps", "512", "--num-seeds", "3", "--no-progress"]
    two = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    runs = {"chunked": (two, ["--chunk-size", "2"]), "plain": (os.environ, ["--devices", "1"])}
    for name, (env, extra) in runs.items():
        done = subprocess.run(["purejaxvpg", "train", *common, *extra, "--out", str(tmp_path / name)], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    chunked, plain = (np.load(tmp_path / name / "metrics.npz") for name in runs)
    for name in plain.files:
        np.testing.assert_allclose(chunked[name], plain[name], rtol=1e-5, atol=1e-6, err_msg=name)
    done = subprocess.run(["purejaxvpg", "eval", str(tmp_path / "chunked"), "--episodes", "2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    done = subprocess.run(["purejaxvpg", "sweep", "--grid", "policy_lr=0.001,0.003", *common[:-3], "--num-seeds", "2",
                           "--out", str(tmp_path / "sweep")], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "rank" in done.stdout, done.stderr
