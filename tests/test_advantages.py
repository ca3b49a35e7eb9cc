"""GAE against an independent numpy implementation written from the definition.

Reference: A_t = sum_{l >= 0} (gamma * lambda)^l * delta_{t+l}, summed only while the
episode continues (the sum stops after a step that terminated or truncated, or at the
end of the rollout), with delta_t = r_t + gamma * V(s'_t) * (1 - terminated_t) - V(s_t).
"""

import jax.numpy as jnp
import numpy as np
import pytest

from purejaxvpg.algo.gae import gae


def reference_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    T, E = rewards.shape
    deltas = rewards + gamma * next_values * (1.0 - terminated) - values
    advantages = np.zeros((T, E))
    for e in range(E):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                total += weight * deltas[k, e]
                if terminated[k, e] or truncated[k, e]:
                    break
                weight *= gamma * lam
            advantages[t, e] = total
    return advantages, advantages + values


def reference_rewards_to_go(rewards, next_values, terminated, truncated, gamma):
    """lambda = 1: discounted sum of rewards to the end of the episode segment, plus
    gamma^k V(s') if the segment was cut by truncation or by the end of the rollout."""
    T, E = rewards.shape
    out = np.zeros((T, E))
    for e in range(E):
        for t in range(T):
            total, discount = 0.0, 1.0
            for k in range(t, T):
                total += discount * rewards[k, e]
                discount *= gamma
                if terminated[k, e]:
                    break
                if truncated[k, e] or k == T - 1:
                    total += discount * next_values[k, e]
                    break
            out[t, e] = total
    return out


def random_rollout(seed, T=37, E=5):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(T, E))
    values = rng.normal(size=(T, E))
    next_values = rng.normal(size=(T, E))
    terminated = rng.random((T, E)) < 0.1
    truncated = rng.random((T, E)) < 0.1
    # make sure the interesting cases are present mid-rollout
    terminated[5, 0], truncated[5, 0] = True, False
    terminated[9, 0], truncated[9, 0] = False, True
    terminated[12, 1], truncated[12, 1] = True, True  # both flags: no bootstrap
    return rewards, values, next_values, terminated, truncated


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.97), (0.9, 0.5), (0.99, 1.0), (0.95, 0.0), (1.0, 1.0)])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("method,unroll", [("scan", 1), ("scan", 4), ("associative", 1)])
def test_gae_matches_numpy_definition(gamma, lam, seed, method, unroll):
    r, v, nv, term, trunc = random_rollout(seed)
    adv, ret = gae(jnp.asarray(r), jnp.asarray(v), jnp.asarray(nv), jnp.asarray(term), jnp.asarray(trunc),
                   gamma, lam, method=method, unroll=unroll)
    ref_adv, ref_ret = reference_gae(r, v, nv, term, trunc, gamma, lam)
    np.testing.assert_allclose(np.asarray(adv), ref_adv, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(ret), ref_ret, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lambda_one_is_rewards_to_go_minus_baseline(seed):
    r, v, nv, term, trunc = random_rollout(seed)
    # as in a real rollout, s'_t is s_{t+1} unless the episode ended at t
    done = term | trunc
    nv[:-1] = np.where(done[:-1], nv[:-1], v[1:])
    gamma = 0.97
    adv, ret = gae(jnp.asarray(r), jnp.asarray(v), jnp.asarray(nv), jnp.asarray(term), jnp.asarray(trunc), gamma, 1.0)
    rtg = reference_rewards_to_go(r, nv, term, trunc, gamma)
    np.testing.assert_allclose(np.asarray(ret), rtg, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(adv), rtg - v, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["scan", "associative"])
def test_truncation_bootstraps_from_final_observation_and_termination_does_not(method):
    """One env, three steps: truncation at t=0, termination at t=1, rollout end at t=2."""
    rewards = np.array([[1.0], [2.0], [3.0]])
    values = np.array([[10.0], [20.0], [30.0]])
    next_values = np.array([[100.0], [200.0], [300.0]])  # V(final_observation)
    terminated = np.array([[False], [True], [False]])
    truncated = np.array([[True], [False], [False]])
    gamma, lam = 0.5, 1.0
    adv, ret = gae(*(jnp.asarray(x) for x in (rewards, values, next_values, terminated, truncated)), gamma, lam,
                   method=method)
    # t=0 truncated: R = 1 + 0.5 * 100;  t=1 terminated: R = 2;  t=2 end: R = 3 + 0.5 * 300
    np.testing.assert_allclose(np.asarray(ret)[:, 0], [51.0, 2.0, 153.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(adv)[:, 0], [41.0, -18.0, 123.0], rtol=1e-6)


@pytest.mark.parametrize("wrong", ["[T, 1] values", "[E] values", "int rewards", "float flags"])
def test_wrong_shapes_and_dtypes_are_refused_naming_them(wrong):
    """chex checks at trace time: [T, 1] or [E] values would otherwise broadcast silently."""
    r, v, nv, term, trunc = (jnp.asarray(x) for x in random_rollout(0, T=13, E=3))
    message = {
        "[T, 1] values": r"different shapes: \[\(13, 3\), \(13, 1\)",
        "[E] values": r"input 1 has rank 1 \(shape \(3,\)\) but expected 2",
        "int rewards": "input 0 has type int32",
        "float flags": "input 3 has type float32 but expected bool",
    }[wrong]
    v = {"[T, 1] values": v[:, :1], "[E] values": v[0]}.get(wrong, v)
    r = r.astype(jnp.int32) if wrong == "int rewards" else r
    term = term.astype(jnp.float32) if wrong == "float flags" else term
    with pytest.raises(AssertionError, match=message + r".*\[gae inputs 0-4: rewards, values"):
        gae(r, v, nv, term, trunc, 0.99, 0.95)
