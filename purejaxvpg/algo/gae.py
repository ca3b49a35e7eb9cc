"""Generalized Advantage Estimation (Schulman et al., 2016) with a reverse lax.scan.

Termination and truncation are different. At a step t that

  * terminated:  the episode really ended, the next state has value 0 -> no bootstrap;
  * truncated:   the episode was cut by a time limit; the state we would have reached,
                 info["final_observation"], still has value V(s'_t) -> bootstrap from it;
  * neither:     s'_t is simply the next observation.

Either way the advantage recursion must not run across the episode boundary.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: float | jax.Array,
    lam: float | jax.Array,
    method: str = "scan",
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets for one rollout.

    Args (all [T, E], time first):
        rewards:     r_t.
        values:      V(s_t).
        next_values: V(s'_t), the value of the observation reached by step t *before* any
                     auto-reset (info["final_observation"]); at the last step this is the
                     bootstrap for the unfinished rollout.
        terminated:  episode ended in a terminal state at step t.
        truncated:   episode was cut by a time limit at step t.
        gamma, lam:  discount and GAE lambda.
        method:      "scan" (a reverse lax.scan of T steps, `unroll` steps per loop
                     iteration) or "associative" (lax.associative_scan: log2(T) levels and
                     no loop, which saves per-iteration loop overhead on a GPU).

    Returns:
        advantages A_t [T, E] and returns R_t = A_t + V(s_t) [T, E] (the value target).
        With lam = 1, R_t is the discounted rewards-to-go, bootstrapped only at truncation
        and at the end of the rollout, and A_t = R_t - V(s_t).
    """
    # trace-time checks (no runtime cost): a [T, E] mix-up would otherwise broadcast silently
    inputs = [rewards, values, next_values, terminated, truncated]
    names = "gae inputs 0-4: rewards, values, next_values (float), terminated, truncated (bool), each [T, E]"
    chex.assert_rank(inputs, 2, custom_message=names)
    chex.assert_equal_shape(inputs, custom_message=names)
    chex.assert_type(inputs, [float, float, float, bool, bool], custom_message=names)
    not_terminated = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - jnp.logical_or(terminated, truncated).astype(jnp.float32)
    # delta_t = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)
    deltas = rewards + gamma * not_terminated * next_values - values
    # A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   A_T = 0
    decay = gamma * lam * not_done

    if method == "associative":
        advantages = _associative_gae(deltas, decay)
        return advantages, advantages + values

    def backward(next_advantage, step):
        delta, k = step
        advantage = delta + k * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(deltas[0]), (deltas, decay), reverse=True, unroll=unroll
    )
    return advantages, advantages + values


def _associative_gae(deltas: jax.Array, decay: jax.Array) -> jax.Array:
    """The same recursion as a parallel prefix over affine maps.

    Step t is the map f_t(x) = delta_t + k_t x applied to A_{t+1}, so
    A_t = (f_t o f_{t+1} o ... o f_{T-1})(0). Maps compose associatively:
    (f_b o f_a)(x) = (d_b + k_b d_a) + (k_b k_a) x, i.e. (k, d) pairs combine as
    (k_b k_a, d_b + k_b d_a). A reversed associative_scan calls fn(later, earlier).
    """

    def compose(later, earlier):
        k_a, d_a = later
        k_b, d_b = earlier
        return k_b * k_a, d_b + k_b * d_a

    _, advantages = jax.lax.associative_scan(compose, (decay, deltas), reverse=True)
    return advantages
