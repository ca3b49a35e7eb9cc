"""The two VPG updates: one policy-gradient step, then `value_iters` value-regression steps.

Follows Spinning Up's VPG: the policy step uses the advantages computed before any
update; the value function then regresses on the returns of the same batch.
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class PolicyStats:
    loss: jax.Array  # surrogate loss before the step
    entropy: jax.Array  # mean policy entropy before the step
    approx_kl: jax.Array  # estimate of KL(pi_old || pi_new) on the batch
    grad_norm: jax.Array  # global norm of the policy gradient (before clipping)


@struct.dataclass
class ValueStats:
    loss: jax.Array  # MSE(V, R) before the first value step
    grad_norm: jax.Array  # global norm of the first value gradient (before clipping)


def normalize(advantages: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """(A - mean A) / (std A + 1e-8) over the whole batch, or with 0/1 `mask` [N] over the
    steps the policy loss uses (mean and std of those only)."""
    if mask is None:
        return (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    mean = masked_mean(advantages, mask)
    std = jnp.sqrt(masked_mean(jnp.square(advantages - mean), mask))
    return (advantages - mean) / (std + 1e-8)


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """sum(m x) / max(sum(m), 1): the mean over the steps whose mask is 1 (0 if there are none)."""
    mask = mask.astype(x.dtype)
    return jnp.sum(mask * x) / jnp.maximum(jnp.sum(mask), 1.0)


def policy_gradient_loss(dist, actions: jax.Array, advantages: jax.Array, ent_coef, mask=None):
    """L(theta) = -mean_t[ log pi_theta(a_t|s_t) * A_t ] - ent_coef * mean_t[ H(pi_theta(.|s_t)) ].

    Its gradient is minus the sample policy gradient g = mean_t[ grad log pi(a_t|s_t) A_t ]
    (plus the entropy term). With 0/1 `mask` [N] the first mean runs over the steps whose
    mask is 1 only (greedy steps excluded, see greedy.py); the entropy stays a mean over every
    state. Returns (loss, (log_probs [N], mean entropy)).
    """
    log_probs = dist.log_prob(actions)
    entropy = dist.entropy().mean()
    if mask is None:
        loss = -jnp.mean(log_probs * advantages) - ent_coef * entropy
    else:
        loss = -masked_mean(log_probs * advantages, mask) - ent_coef * entropy
    return loss, (log_probs, entropy)


def policy_step(
    apply_actor: Callable,
    params,
    opt_state,
    optimizer: optax.GradientTransformation,
    obs: jax.Array,
    actions: jax.Array,
    advantages: jax.Array,
    ent_coef,
    mask: jax.Array | None = None,
):
    """One gradient step on the policy.  obs [N, ...], actions [N, ...], advantages [N];
    `mask` [N] 0/1: the steps the policy-gradient term uses (None: all); approx_kl is
    then over those steps too (its estimator needs actions sampled from the old policy)."""
    # trace-time checks: one sample axis N, shared by all three
    names = "policy_step inputs 0-2: obs [N, ...], actions [N, ...], advantages [N] (float)"
    chex.assert_rank(advantages, 1, custom_message=names)
    chex.assert_equal_shape_prefix([obs, actions, advantages], 1, custom_message=names)
    chex.assert_type(advantages, float, custom_message=names)

    def loss_fn(p):
        return policy_gradient_loss(apply_actor(p, obs), actions, advantages, ent_coef, mask)

    (loss, (old_log_probs, entropy)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    # k3 estimator of KL(old || new) with samples from the old policy:
    # r = pi_new / pi_old,  KL ~ mean[(r - 1) - log r]  (>= 0 per sample).
    log_ratio = apply_actor(params, obs).log_prob(actions) - old_log_probs
    k3 = jnp.expm1(log_ratio) - log_ratio
    approx_kl = jnp.mean(k3) if mask is None else masked_mean(k3, mask)
    stats = PolicyStats(loss, entropy, approx_kl, optax.tree.norm(grads))
    return params, opt_state, stats


def value_steps(
    apply_critic: Callable,
    params,
    opt_state,
    optimizer: optax.GradientTransformation,
    obs: jax.Array,
    returns: jax.Array,
    num_iters,
    unroll: int = 1,
):
    """`num_iters` full-batch steps on L(phi) = mean_t[ (V_phi(s_t) - R_t)^2 ].  obs [N, ...], returns [N].

    `num_iters` may be a traced integer (a sweep over value steps); then the loop is a
    while loop with a per-seed trip count.
    """
    # trace-time checks: one target per observation
    names = "value_steps inputs 0-1: obs [N, ...], returns [N] (float)"
    chex.assert_rank(returns, 1, custom_message=names)
    chex.assert_equal_shape_prefix([obs, returns], 1, custom_message=names)
    chex.assert_type(returns, float, custom_message=names)

    def loss_fn(p):
        return jnp.mean(jnp.square(apply_critic(p, obs) - returns))

    def one_step(p, s):
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss, optax.tree.norm(grads)

    # the first step reports the loss and gradient norm before any value update
    params, opt_state, loss, grad_norm = one_step(params, opt_state)
    static = isinstance(num_iters, int)  # unrolling needs a trip count known when tracing
    params, opt_state = jax.lax.fori_loop(
        1, num_iters, lambda _, c: one_step(*c)[:2], (params, opt_state),
        unroll=max(1, min(unroll, num_iters - 1)) if static else None,
    )
    return params, opt_state, ValueStats(loss, grad_norm)
