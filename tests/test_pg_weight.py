"""The three policy-gradient weightings (Config.pg_weight) against closed forms.

The weights the trainer uses are checked step by step against R(tau), R^f_t and A_t written in
numpy from their definitions (sums over each episode of the whole history, not recursions),
on an environment with deterministic rewards whose episodes end by termination, by the time
limit, and cross rollout boundaries; and through the trainer's own policy loss. Each weighting
then learns a known-answer task.
"""

import argparse
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

import purejaxvpg as pjv
from purejaxvpg import envs
from purejaxvpg.algo import gae, pg_weight, program, rollout
from purejaxvpg.host import rundir
from purejaxvpg.tools import cli, flags

GAMMA, LAMBDA = 0.9, 0.8


# ------------------------------------------------------------------ pure functions, by hand


def test_hand_computed_weights_termination_truncation_and_rollout_end():
    """One environment, 5 steps, gamma 0.5: terminated at t = 1, truncated at t = 3, alive at
    the end; rewards 1..5, V(s'_t) = 10, 20, .., 50; the episode of t = 0 began earlier with
    P = 1.5 and gamma^n = 0.25 (n = 2 steps before this rollout).

    R^f_4 = 5 + .5 * 50 = 30 (rollout end: bootstrap)   R^f_3 = 4 + .5 * 40 = 24 (truncated: bootstrap)
    R^f_2 = 3 + .5 * 24 = 15    R^f_1 = 2 (terminated: none)    R^f_0 = 1 + .5 * 2 = 2
    R(tau): t = 0, 1: 1.5 + .25 * 2 = 2;  t = 2, 3: 15;  t = 4: 30.  After: P = 5, gamma^n = .5.
    """
    col = lambda *x: jnp.array(x, jnp.float32)[:, None]  # noqa: E731  [T] -> [T, 1]
    rewards, next_values = col(1, 2, 3, 4, 5), col(10, 20, 30, 40, 50)
    terminated = col(0, 1, 0, 0, 0).astype(bool)
    truncated = col(0, 0, 0, 1, 0).astype(bool)
    future = pg_weight.future_return(rewards, next_values, terminated, truncated, 0.5)
    np.testing.assert_allclose(future[:, 0], [2, 2, 15, 24, 30])
    so_far = pg_weight.EpisodeSoFar(jnp.array([1.5]), jnp.array([0.25]))
    episode, after = pg_weight.episode_return(rewards, next_values, terminated, truncated, so_far, 0.5)
    np.testing.assert_allclose(episode[:, 0], [2, 2, 15, 15, 30])
    np.testing.assert_allclose([after.discounted_return[0], after.discount[0]], [5.0, 0.5])
    # a truncation read as a termination would drop the bootstrap: R^f_3 = 4, not 24
    as_death = pg_weight.future_return(rewards, next_values, terminated | truncated, truncated & False, 0.5)
    assert float(as_death[3, 0]) == 4.0


# ------------------------------------------------------------------ the trainer's weights


@struct.dataclass
class StairsState(environment.EnvState):
    position: jax.Array
    time: int


@struct.dataclass
class StairsParams(environment.EnvParams):
    max_steps_in_episode: int = 5


class Stairs(environment.Environment):
    """Deterministic rewards: step p of an episode pays 1 + p + 0.5 a (action a in {0, 1});
    action 1 from p >= 2 on terminates; the time limit truncates after 5 steps. Under a
    random policy episodes end both ways, at different lengths."""

    @property
    def default_params(self):
        return StairsParams()

    def step_env(self, key, state, action, params):
        reward = 1.0 + state.position + 0.5 * action
        terminated = jnp.logical_and(action == 1, state.position >= 2)
        new = StairsState(position=state.position + 1, time=state.time + 1)
        return self._obs(new.position), new, reward.astype(jnp.float32), terminated, {}

    def reset_env(self, key, params):
        return self._obs(jnp.int32(0)), StairsState(position=jnp.int32(0), time=0)

    @staticmethod
    def _obs(position):
        return jax.nn.one_hot(position, 6, dtype=jnp.float32)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (6,), jnp.float32)


def reference(weighting, rewards, terminated, truncated, values, next_values, window: int):
    """Weights [K * T, E] from the definitions, over the whole history ([K * T, E]: K rollouts
    of `window` steps, one after the other; values / next_values those of each rollout's critic).

    For step g of an episode that began at step s, with m the episode's last step that g's
    rollout shows and B its bootstrap (0 terminated; V(s'_m) truncated or at the rollout's end):
      R(tau) = sum_{j=s}^{m} gamma^(j-s) r_j + gamma^(m-s+1) B
      R^f_g  = sum_{j=g}^{m} gamma^(j-g) r_j + gamma^(m-g+1) B
      A_g    = sum_{j=g}^{m} (gamma lambda)^(j-g) delta_j,  delta_j = r_j + gamma (1 - term_j) V(s'_j) - V(s_j)
    """
    steps, num_envs = rewards.shape
    done = terminated | truncated
    out = np.zeros((steps, num_envs))
    for e in range(num_envs):
        start = 0
        for g in range(steps):
            if g > 0 and done[g - 1, e]:
                start = g
            rollout_end = (g // window + 1) * window - 1
            m = next((j for j in range(g, rollout_end + 1) if done[j, e]), rollout_end)
            bootstrap = 0.0 if terminated[m, e] else next_values[m, e]
            first = start if weighting == "episode_return" else g
            if weighting == "gae":
                deltas = [rewards[j, e] + GAMMA * (1 - terminated[j, e]) * next_values[j, e] - values[j, e]
                          for j in range(g, m + 1)]
                out[g, e] = sum((GAMMA * LAMBDA) ** i * d for i, d in enumerate(deltas))
            else:
                out[g, e] = sum(GAMMA ** (j - first) * rewards[j, e] for j in range(first, m + 1))
                out[g, e] += GAMMA ** (m - first + 1) * bootstrap
    return out


WINDOW, NUM_ENVS, ROLLOUTS = 4, 8, 4


@pytest.fixture(scope="module", params=["gae", "future_return", "episode_return"])
def history(request):
    """The trainer's own updates on Stairs, and what each rollout showed it."""
    config = pjv.Config(
        env_id="Stairs", num_envs=NUM_ENVS, num_steps=WINDOW, total_steps=NUM_ENVS * WINDOW * ROLLOUTS,
        gamma=GAMMA, gae_lambda=LAMBDA, pg_weight=request.param, normalize_advantages=False,
        policy_lr=0.05, value_lr=0.05, hidden_sizes=(8,),
    )
    agent = program.Agent.build(config.validate(own_env=True), env=Stairs())
    hp = program.HyperParams.from_config(config)
    state = program.init(agent, hp, jax.random.key(3))
    update = jax.jit(lambda s: program.update(agent, hp, s))

    @jax.jit
    def observe(state):
        """The rollout this update will collect (the same state, so the same batch), with the
        critic's values and the actor's log-probabilities of its actions."""
        _, batch = rollout.collect(lambda obs: agent.actor.apply(state.actor_params, obs), agent.stack.env,
                                   agent.stack.env_params, agent.stack.spec, state.runner, WINDOW)
        flat = lambda x: x.reshape(WINDOW * NUM_ENVS, *x.shape[2:])  # noqa: E731
        value = lambda x: agent.critic.apply(state.critic_params, flat(x)).reshape(WINDOW, -1)  # noqa: E731
        log_probs = agent.actor.apply(state.actor_params, flat(batch.obs)).log_prob(flat(batch.action))
        return batch, value(batch.obs), value(batch.next_obs), log_probs.reshape(WINDOW, -1)

    seen = []
    for _ in range(ROLLOUTS):
        batch, values, next_values, log_probs = jax.device_get(observe(state))
        seen.append(dict(batch=batch, values=values, next_values=next_values, log_probs=log_probs,
                         so_far=state.episode_so_far))
        state, metrics = update(state)
        seen[-1]["policy_loss"] = float(metrics.policy_loss)
    return request.param, agent, seen, state


def _stack(seen, name):
    return np.concatenate([np.asarray(getattr(s["batch"], name)) if hasattr(s["batch"], name) else s[name]
                           for s in seen])


def test_history_has_every_kind_of_episode_end(history):
    """The data the next test checks holds episodes that cross a rollout boundary and then
    terminate, and ones that cross and are then truncated by the time limit."""
    _, _, seen, _ = history
    terminated, truncated = _stack(seen, "terminated"), _stack(seen, "truncated")
    ends = set()
    for e in range(NUM_ENVS):
        start = 0
        for g in np.flatnonzero(terminated[:, e] | truncated[:, e]):
            ends.add((bool(start // WINDOW != g // WINDOW), "terminated" if terminated[g, e] else "truncated"))
            start = g + 1
    assert {(True, "terminated"), (True, "truncated"), (False, "terminated")} <= ends  # (truncation: 5 > 4 steps)


def test_trainer_weights_equal_the_closed_forms(history):
    """Step by step, in every rollout, including episodes cut by a rollout boundary (their
    past carried in the TrainState) and by the time limit."""
    weighting, agent, seen, final = history
    expected = reference(weighting, _stack(seen, "reward"), _stack(seen, "terminated"), _stack(seen, "truncated"),
                         _stack(seen, "values"), _stack(seen, "next_values"), WINDOW)
    for k, s in enumerate(seen):
        b = s["batch"]
        advantages, _ = gae.gae(b.reward, jnp.asarray(s["values"]), jnp.asarray(s["next_values"]),
                                b.terminated, b.truncated, GAMMA, LAMBDA)
        used, _ = pg_weight.psi(weighting, advantages, b.reward, jnp.asarray(s["next_values"]),
                                b.terminated, b.truncated, s["so_far"], GAMMA)
        window = expected[k * WINDOW : (k + 1) * WINDOW]
        np.testing.assert_allclose(used, window, rtol=1e-5, atol=1e-5, err_msg=f"rollout {k}")
        # the trainer's policy loss, -mean(log pi(a_t|s_t) w_t), holds these very weights
        np.testing.assert_allclose(s["policy_loss"], -np.mean(s["log_probs"] * window), rtol=1e-5,
                                   err_msg=f"rollout {k}")
    if weighting == "episode_return":  # what is carried after the last rollout, from its definition
        rewards, done = _stack(seen, "reward"), _stack(seen, "terminated") | _stack(seen, "truncated")
        for e in range(NUM_ENVS):
            start = max([g + 1 for g in range(len(done)) if done[g, e]], default=0)
            past = sum(GAMMA ** (j - start) * rewards[j, e] for j in range(start, len(done)))
            np.testing.assert_allclose(final.episode_so_far.discounted_return[e], past, rtol=1e-5)
            np.testing.assert_allclose(final.episode_so_far.discount[e], GAMMA ** (len(done) - start), rtol=1e-5)
    else:
        assert final.episode_so_far is None  # no state carried: the default program is unchanged


# ------------------------------------------------------------------ learning, config, CLI


class AlwaysOne(envs.TimeLimitTask):
    """TimeLimit-known paying the action (Discrete(2)): 8 steps, each pays 1 for action 1.
    Optimal return 8; a random policy earns 4."""

    def reward(self, key, action, params):
        return action.astype(jnp.float32)


@pytest.mark.parametrize("weighting", ["future_return", "episode_return"])
def test_each_weighting_learns_a_known_answer_task(weighting):
    """(GAE, the default, learns the known-answer tasks of test_known_envs.py and test_learning.py.)"""
    config = pjv.Config(env_id="AlwaysOne", num_envs=8, num_steps=8, total_steps=8 * 8 * 30, policy_lr=3e-2,
                        hidden_sizes=(16,), gamma=0.9, pg_weight=weighting)
    params = dataclasses.replace(envs.TimeLimitTask().default_params, max_steps_in_episode=8)
    result = pjv.train(config, num_seeds=2, env=AlwaysOne(), env_params=params)
    assert (result.metrics["episode_return"][:, -1] > 7.5).all(), result.metrics["episode_return"][:, -1]


def test_pg_weight_is_validated_a_flag_and_recorded(tmp_path, capsys):
    with pytest.raises(ValueError, match="pg_weight: must be one of gae, future_return, episode_return"):
        pjv.Config(pg_weight="reinforce").validate()
    assert cli.main(["train", "--pg-weight", "rewards_to_go"]) == 2  # before anything compiles
    assert "pg_weight: must be one of" in capsys.readouterr().err
    parser = argparse.ArgumentParser()
    flags.add_config_flags(parser)
    config = flags.config_from_args(parser.parse_args(["--pg-weight", "episode_return"]))
    assert config == pjv.Config(pg_weight="episode_return")
    rundir.write_config(tmp_path, config, {})
    assert json.loads((tmp_path / "config.json").read_text())["config"]["pg_weight"] == "episode_return"
    assert rundir.read_config(tmp_path)[0] == config
    # a run directory written before the field existed reads as the default
    info = json.loads((tmp_path / "config.json").read_text())
    del info["config"]["pg_weight"]
    (tmp_path / "config.json").write_text(json.dumps(info))
    assert rundir.read_config(tmp_path)[0].pg_weight == "gae"
