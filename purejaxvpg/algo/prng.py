"""Every PRNG stream a run uses, named in one place: no key serves two purposes.

    jax.random.key(seed) -> split 2:
      [0] training    -> split num_seeds: seed i's key               (seed_keys)
      [1] evaluation  -> split num_seeds: seed i's `purejaxvpg eval` key  (eval_keys)
    seed i's key -> split 4 (RunStreams):
      actor       initial policy parameters
      critic      initial value parameters
      env         rollout.reset: the environments' resets, then the runner's key;
                  each rollout step splits it (step_keys) into the next runner key,
                  the action sample's key, the environment step's key and, with a
                  greedy schedule (greedy.py), the greedy coin's key
      evaluation  fold_in(evaluation, u): the evaluation after update u (in_run_eval_key)

Every key is a child of exactly one parent through one `split` (or, for the per-update
evaluation keys, one `fold_in` of a key nothing else uses), so two consumers never share
a key. (Mixing `split` and `fold_in` on the same parent would: with partitionable
threefry, `fold_in(k, i) == split(k, n)[i]`.) Seed i's key is `split(training, n)[i]`,
which does not depend on n: a seed trained alone equals the same seed in a batch, and seeds
K..K+N-1 trained on their own (`--seed-start K --num-seeds N`) equal those seeds of one run.
That needs jax's partitionable threefry (jax_threefry_partitionable, the default since
jax 0.5.0, which pyproject.toml requires).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from purejaxvpg.checks import require_int

# jax.random.key keeps the low 32 bits of a seed (key(2**32) == key(0)) and fails above 2**63.
MAX_SEED = 2**32 - 1
# seed indices of a base seed: fold_in takes a uint32 (see _children)
MAX_SEEDS = 2**32


def roots(seed) -> jax.Array:
    """The (training, evaluation) root keys of a base seed."""
    seed = require_int("seed", seed, low=0, high=MAX_SEED)
    return jax.random.split(jax.random.key(seed), 2)


def seed_range(num_seeds: int, start: int = 0) -> range:
    """Seeds start..start+num_seeds-1, checked: ValueError naming `num_seeds` or
    `seed_start` unless both are integers, num_seeds >= 1, start >= 0 and the last
    index is below MAX_SEEDS."""
    num_seeds = require_int("num_seeds", num_seeds, low=1, high=MAX_SEEDS)
    start = require_int("seed_start", start, low=0, high=MAX_SEEDS - num_seeds)
    return range(start, start + num_seeds)


def _children(parent: jax.Array, seeds: range) -> jax.Array:
    """`split(parent, seeds.stop)[seeds.start:]` without the first seeds.start keys:
    with partitionable threefry, child i of a split is fold_in(parent, i) whatever the
    split's size (tests/test_merge.py checks the two agree)."""
    index = jnp.asarray(np.arange(seeds.start, seeds.stop, dtype=np.uint32))
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(parent, index)


def seed_keys(seed: int, num_seeds: int, start: int = 0) -> jax.Array:
    """The training keys of seeds start..start+num_seeds-1 [num_seeds] of base seed
    `seed`: key i belongs to seed i whatever the number of seeds or the range, so runs of
    seed ranges together train the same seeds as one run (`purejaxvpg merge`)."""
    return _children(roots(seed)[0], seed_range(num_seeds, start))


def eval_keys(seed: int, num_seeds: int, start: int = 0) -> jax.Array:
    """The keys of `purejaxvpg eval --seed seed` for a run's seeds start..start+num_seeds-1
    [num_seeds]: a stream disjoint from every training key (of any base seed)."""
    return _children(roots(seed)[1], seed_range(num_seeds, start))


@struct.dataclass
class RunStreams:
    """The independent streams of one seed's run (scalar keys)."""

    actor: jax.Array
    critic: jax.Array
    env: jax.Array
    evaluation: jax.Array

    @classmethod
    def of(cls, key: jax.Array) -> RunStreams:
        return cls(*jax.random.split(key, 4))


def step_keys(runner_key: jax.Array, greedy: bool) -> jax.Array:
    """The keys of one rollout step [3], or with the greedy schedule [4]: (next runner key,
    action, environment step[, greedy coin]). split(k, n)[i] does not depend on n
    (partitionable threefry), so the coin is a fourth, independent child and the first three
    are the same with or without it."""
    return jax.random.split(runner_key, 4 if greedy else 3)


def in_run_eval_key(evaluation: jax.Array, update) -> jax.Array:
    """The key of the evaluation after (0-based) update `update`; `evaluation` is the
    run's evaluation stream, used for nothing else."""
    return jax.random.fold_in(evaluation, update)


def check_keys(keys) -> jax.Array:
    """`keys` as typed PRNG keys [num_seeds]; ValueError naming `keys` otherwise.

    Raw uint32 keys (jax.random.PRNGKey style, [num_seeds, 2]) are wrapped as the default
    implementation's keys, the same keys jax's legacy API would use.
    """
    if not isinstance(keys, jax.Array):
        raise ValueError(
            "keys: must be a jax array of PRNG keys of shape [num_seeds] "
            f"(e.g. purejaxvpg.seed_keys(seed, n)), got {type(keys).__name__}."
        )
    if not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        key_shape = jax.random.key_data(jax.random.key(0)).shape
        if keys.dtype != jnp.uint32 or keys.ndim != 1 + len(key_shape) or keys.shape[1:] != key_shape:
            raise ValueError(
                "keys: must be typed PRNG keys of shape [num_seeds] (jax.random.key, "
                f"purejaxvpg.seed_keys) or raw uint32 keys of shape [num_seeds, {key_shape[0]}], "
                f"got {keys.dtype} of shape {keys.shape}."
            )
        keys = jax.random.wrap_key_data(keys)
    if keys.ndim != 1 or keys.shape[0] < 1:
        raise ValueError(
            "keys: must be a 1-d array of at least one PRNG key, [num_seeds], "
            f"got shape {keys.shape}."
        )
    return keys


# --- conversions: typed keys <-> the uint32 key data files hold (chunks, checkpoints) ---


def is_key(x) -> bool:
    """Whether x is a typed PRNG key array (or its abstract shape)."""
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_data(tree):
    """Typed PRNG keys -> their uint32 key data, every other leaf unchanged."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


def data_shape(like) -> jax.ShapeDtypeStruct:
    """The ShapeDtypeStruct a leaf like `like` is stored as (key data for a key)."""
    if is_key(like):
        return jax.ShapeDtypeStruct((*like.shape, *jax.random.key_data(jax.random.key(0)).shape), jnp.uint32)
    return jax.ShapeDtypeStruct(like.shape, like.dtype)


def from_data(tree, like):
    """Inverse of to_data: leaves whose counterpart in `like` (same structure, e.g.
    jax.eval_shape output) is a key are wrapped back into typed keys."""
    return jax.tree.map(lambda x, ref: jax.random.wrap_key_data(x) if is_key(ref) else x, tree, like)


def to_host(x, count: int):
    """The first `count` seeds of a leaf, as numpy (PRNG keys stay key arrays)."""
    return x[:count] if is_key(x) else np.asarray(x[:count])


def concatenate(*parts):
    """Join per-chunk leaves along the seed axis (keys stay key arrays)."""
    return jnp.concatenate(parts) if is_key(parts[0]) else np.concatenate(parts)
