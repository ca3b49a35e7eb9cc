"""Recurrent policies (Config.recurrent 'gru'): the hidden states a rollout carries, and the
recomputation of a rollout's sequence that the update differentiates.

Acting runs one step of the actor per environment step (networks._Recurrent.__call__). The
update then recomputes the whole rollout from the hidden states it started with, which the
runner stored (one per rollout, not per step), resetting at the same episode starts:

    h_t = GRU(0 if first_t else h_{t-1}, x(s_t)),  h_{-1} = the stored state    [T, E, H]

so the loss sees exactly the hidden states that chose the actions (to float rounding: the
features are computed for T * E observations at once instead of E at a time). The critic is
not run while acting: its hidden states come from the same recomputation, and V(s'_t) of the
pre-reset next observation reads h'_t = GRU(h_t, x(s'_t)), the state that saw s_t and then
s'_t, so a truncated episode bootstraps from the memory of its own episode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RecurrentState:
    """The actor's and the critic's GRU states after the last observation each read, [E, H]."""

    actor: jax.Array
    critic: jax.Array

    @classmethod
    def zeros(cls, num_envs: int, size: int) -> RecurrentState:
        return cls(jnp.zeros((num_envs, size), jnp.float32), jnp.zeros((num_envs, size), jnp.float32))


def unroll(net, params, hidden0: jax.Array, obs: jax.Array, first: jax.Array, unroll: int = 1) -> jax.Array:
    """The hidden states of a rollout: hidden0 [E, H], obs [T, E, *obs_shape], first [T, E]
    bool -> h [T, E, H], h_t after reading s_t (reset where first_t)."""
    T, E = first.shape
    x = net.apply(params, obs.reshape(T * E, *obs.shape[2:]), method="features").reshape(T, E, -1)

    def step(h, inputs):
        x_t, first_t = inputs
        h = net.apply(params, h, x_t, first_t, method="step")
        return h, h

    _, hs = jax.lax.scan(step, hidden0, (x, first), unroll=unroll)
    return hs


def heads(net, params, hs: jax.Array):
    """The network's outputs for hidden states [..., H] flattened to [N, H]: a distribution
    over N (actor) or values [N] (critic)."""
    return net.apply(params, hs.reshape(-1, hs.shape[-1]), method="head")


def sequence_apply(net, hidden0: jax.Array, first: jax.Array, T: int, E: int, unroll_steps: int = 1):
    """`apply(params, obs [T * E, ...])` as losses.policy_step / value_steps call a network:
    the rollout's sequence recomputed from `hidden0` with `params` (gradients flow through
    the whole sequence), outputs over the T * E steps in the same (time-major) order."""

    def apply(params, obs_flat: jax.Array):
        obs = obs_flat.reshape(T, E, *obs_flat.shape[1:])
        return heads(net, params, unroll(net, params, hidden0, obs, first, unroll_steps))

    return apply


def next_values(critic, params, hs: jax.Array, next_obs: jax.Array) -> jax.Array:
    """V(s'_t) [T, E] of the pre-reset next observations next_obs [T, E, ...], each read by
    h'_t = GRU(h_t, x(s'_t)) from the critic's hidden state h_t [T, E, H] that saw s_t."""
    T, E, H = hs.shape
    x = critic.apply(params, next_obs.reshape(T * E, *next_obs.shape[2:]), method="features")
    h_next = critic.apply(params, hs.reshape(T * E, H), x, jnp.zeros(T * E, bool), method="step")
    return heads(critic, params, h_next).reshape(T, E)
