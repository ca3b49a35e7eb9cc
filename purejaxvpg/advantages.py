"""Generalized Advantage Estimation (Schulman et al., 2016) with a reverse lax.scan.

Termination and truncation are different. At a step t that

  * terminated:  the episode really ended, the next state has value 0 -> no bootstrap;
  * truncated:   the episode was cut by a time limit; the state we would have reached,
                 info["final_observation"], still has value V(s'_t) -> bootstrap from it;
  * neither:     s'_t is simply the next observation.

Either way the advantage recursion must not run across the episode boundary.
"""

from __future__ import annotations

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

    Returns:
        advantages A_t [T, E] and returns R_t = A_t + V(s_t) [T, E] (the value target).
        With lam = 1, R_t is the discounted rewards-to-go, bootstrapped only at truncation
        and at the end of the rollout, and A_t = R_t - V(s_t).
    """
    not_terminated = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - jnp.logical_or(terminated, truncated).astype(jnp.float32)
    # delta_t = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)
    deltas = rewards + gamma * not_terminated * next_values - values
    # A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   A_T = 0
    decay = gamma * lam * not_done

    def backward(next_advantage, step):
        delta, k = step
        advantage = delta + k * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(deltas[0]), (deltas, decay), reverse=True
    )
    return advantages, advantages + values
