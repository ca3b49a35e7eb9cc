"""The weight of each score function grad log pi(a_t|s_t) in the policy gradient (Config.pg_weight).

    g = mean_t[ grad log pi(a_t|s_t) * w_t ]

The reference text's ladder, from the rudimentary gradient to the one the trainer uses by default:

  episode_return  w_t = R(tau) = sum_{k=0}^{L-1} gamma^k r_k, the discounted return of the whole
                  episode t belongs to (the same for each of its steps; gamma = 1: the text's sum);
  future_return   w_t = R^f_t = sum_{k>=t} gamma^(k-t) r_k, the discounted rewards-to-go;
  gae             w_t = A_t, the GAE advantage (algo/gae.py).

R^f_t includes r_t. Our r_t is what env.step returns for (s_t, a_t), the reward the text writes
r_{t+1} in tau = (s_0, a_0, r_1), ...: it comes after a_t, so a_t can cause it. The text says
both "R^f_0 contains all the rewards" (so R^f_t holds the reward right after a_t) and
"R^f_{T-1} contains no rewards" (true only of a last state with no action and reward after it);
we follow the first. Leaving r_t out would drop the whole signal of a one-step task and bias
the estimate: grad J = E[sum_t grad log pi(a_t|s_t) Q(s_t, a_t)], and Q(s_t, a_t) includes r_t.

Where the batch does not show an episode's end, its unseen remainder is bootstrapped from the
learned V (the value function is trained the same way whatever the weighting):

  * termination at step t:       nothing follows (bootstrap 0);
  * truncation at step t:        the cut episode would go on from s'_t = final_observation,
                                 worth V(s'_t) (time limits are not part of the task);
  * rollout end (t = T-1, alive): the episode goes on in the next rollout from s'_{T-1}: V(s'_{T-1}).

So R^f_t = r_t + gamma * c_t, with c_t = 0 (terminated), V(s'_t) (truncated, or t = T-1 and
not done) or R^f_{t+1} (otherwise). R(tau) needs the episode's past too, which may lie in
earlier rollouts: `EpisodeSoFar` carries, per environment, P = sum_{k<n} gamma^k r_k of the
n steps of the episode in progress and gamma^n, from one rollout to the next. For a step t that
is the n_t-th of its episode,

  R(tau)_t = P_t + gamma^(n_t) R^f_t = sum_{k=0}^{m} gamma^k r_(k) + gamma^(m+1) B,

m the last step of the episode the rollout shows, B its bootstrap above. Every step of an
episode the rollout shows whole gets the exact R(tau); an episode still running at the end of
the rollout gets its observed rewards plus the bootstrapped rest, and its later steps, in the
next rollout, its past rewards exactly.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class EpisodeSoFar:
    """The episode in progress in each environment, between rollouts (pg_weight 'episode_return').

    discounted_return: P = sum_{k<n} gamma^k r_k over its n steps so far   [E]
    discount:          gamma^n, the discount of its next reward              [E]
    """

    discounted_return: jax.Array
    discount: jax.Array

    @classmethod
    def zeros(cls, num_envs: int) -> EpisodeSoFar:
        """Fresh episodes: no rewards yet, next reward undiscounted."""
        return cls(jnp.zeros((num_envs,), jnp.float32), jnp.ones((num_envs,), jnp.float32))


def _check(rewards, next_values, terminated, truncated):
    # trace-time checks (no runtime cost): a [T, E] mix-up would otherwise broadcast silently
    inputs = [rewards, next_values, terminated, truncated]
    names = "pg_weight inputs: rewards, next_values (float), terminated, truncated (bool), each [T, E]"
    chex.assert_rank(inputs, 2, custom_message=names)
    chex.assert_equal_shape(inputs, custom_message=names)
    chex.assert_type(inputs, [float, float, bool, bool], custom_message=names)


def future_return(rewards, next_values, terminated, truncated, gamma, unroll: int = 1) -> jax.Array:
    """R^f_t [T, E], the discounted rewards-to-go of each step, bootstrapped where the batch cuts
    the episode (see the module docstring): a reverse scan of

        R^f_t = r_t + gamma (1 - terminated_t) [done_t V(s'_t) + (1 - done_t) R^f_{t+1}],
        R^f_T := V(s'_{T-1}).

    Args (all [T, E], time first): rewards r_t; next_values V(s'_t) of the observation reached
    by step t before any auto-reset; terminated, truncated (bool).
    """
    _check(rewards, next_values, terminated, truncated)
    not_terminated = 1.0 - terminated.astype(jnp.float32)
    done = jnp.logical_or(terminated, truncated)

    def backward(later, step):
        reward, next_value, alive, ended = step
        value = reward + gamma * alive * jnp.where(ended, next_value, later)
        return value, value

    _, returns = jax.lax.scan(
        backward, next_values[-1], (rewards, next_values, not_terminated, done), reverse=True, unroll=unroll
    )
    return returns


def episode_return(
    rewards, next_values, terminated, truncated, so_far: EpisodeSoFar, gamma, unroll: int = 1
) -> tuple[jax.Array, EpisodeSoFar]:
    """(R(tau)_t [T, E], EpisodeSoFar after the rollout): each step's weight is the discounted
    return of its whole episode, P_t + gamma^(n_t) R^f_t (see the module docstring).

    A forward scan carries P_t and gamma^(n_t) from `so_far` (the rollout's first step):

        P_{t+1} = (1 - done_t) (P_t + gamma^(n_t) r_t),   gamma^(n_{t+1}) = done_t ? 1 : gamma gamma^(n_t).

    Args: as `future_return`, plus `so_far` ([E] each) from the previous rollout.
    """
    rewards_to_go = future_return(rewards, next_values, terminated, truncated, gamma, unroll)
    done = jnp.logical_or(terminated, truncated)

    def forward(carry: EpisodeSoFar, step):
        reward, ended = step
        past, discount = carry.discounted_return, carry.discount
        after = EpisodeSoFar(
            discounted_return=jnp.where(ended, 0.0, past + discount * reward),
            discount=jnp.where(ended, 1.0, gamma * discount),
        )
        return after, (past, discount)

    so_far, (past, discount) = jax.lax.scan(forward, so_far, (rewards, done), unroll=unroll)
    return past + discount * rewards_to_go, so_far


def psi(pg_weight: str, advantages, rewards, next_values, terminated, truncated,
                   so_far: EpisodeSoFar | None, gamma, unroll: int = 1):
    """(w_t [T, E], EpisodeSoFar or None) for Config.pg_weight; 'gae' returns `advantages` as
    they are (the default program is unchanged). `so_far` is None unless 'episode_return'."""
    if pg_weight == "gae":
        return advantages, so_far
    if pg_weight == "future_return":
        return future_return(rewards, next_values, terminated, truncated, gamma, unroll), so_far
    if pg_weight == "episode_return":
        return episode_return(rewards, next_values, terminated, truncated, so_far, gamma, unroll)
    raise ValueError(f"pg_weight: must be one of gae, future_return, episode_return, got {pg_weight!r}.")
