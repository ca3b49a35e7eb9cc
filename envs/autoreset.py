"""What every adapter does the same way: end an episode, auto-reset on the same step, read a
dm_env-style TimeStep, and flatten a structured observation.

The contract (envs/__init__.py) returns, on the step an episode ends, the *next* episode's
first observation and state, with the observation the episode ended on kept in
info["final_observation"]; a time limit is `truncated`, a real ending `terminated`, and
termination wins when both happen on one step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def end_flags(done, time, max_steps):
    """(terminated, truncated) from the environment's own end flag and the adapter's step count.

        truncated  = time >= max_steps and not done     (the limit; termination wins)
        terminated = done
    """
    terminated = jnp.asarray(done, bool)
    truncated = jnp.logical_and(time >= max_steps, ~terminated)
    return terminated, truncated


def timestep_flags(step_type, discount, time=None, max_steps=None):
    """(terminated, truncated) from a dm_env-style TimeStep (Jumanji, XLand-MiniGrid).

    Never from `step_type` alone: a LAST step is a termination when its discount is 0 and a
    truncation (the environment's own time limit) otherwise,

        terminated = last and discount == 0
        truncated  = (last and discount != 0) or time >= max_steps    (unless terminated)

    where `time >= max_steps` is the adapter's own limit, when it sets one.
    """
    last = jnp.asarray(step_type) == 2  # dm_env.StepType.LAST in both libraries
    terminated = jnp.logical_and(last, jnp.asarray(discount) == 0)
    truncated = jnp.logical_and(last, ~terminated)
    if max_steps is not None:
        truncated = jnp.logical_or(truncated, jnp.logical_and(time >= max_steps, ~terminated))
    return terminated, truncated


def select(ended, on_reset, on_continue):
    """`on_reset` where the episode ended, else `on_continue` (same pytree structure)."""
    return jax.tree.map(lambda r, c: jnp.where(ended, r, c), on_reset, on_continue)


def flatten_observation(obs) -> jax.Array:
    """One float32 vector from an array or a pytree of arrays (a structured observation).

    The rule: the leaves in `jax.tree.leaves` order (a NamedTuple's or dataclass's field order,
    a dict's sorted keys), each cast to float32 (booleans become 0/1) and raveled, then
    concatenated. Works on one observation; vmap it for a batch.
    """
    leaves = jax.tree.leaves(obs)
    return jnp.concatenate([jnp.ravel(jnp.asarray(leaf, jnp.float32)) for leaf in leaves])


def raw_key(key) -> jax.Array:
    """The uint32 key data the libraries take, from the typed key the trainer passes (a raw
    key is passed through)."""
    return jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
