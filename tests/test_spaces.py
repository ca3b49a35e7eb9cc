"""purejaxvpg's own spaces (envs.spaces) behave as gymnax's, which users' environments still
return: the same random actions from the same key (so check_env's rollout is unchanged), the
same membership, and both are read alike by duck typing."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces as gymnax_spaces

from purejaxvpg import envs
from purejaxvpg.envs import spaces

PAIRS = [
    (spaces.Discrete(5), gymnax_spaces.Discrete(5)),
    (spaces.Box(-2.0, 2.0, (3,), jnp.float32), gymnax_spaces.Box(-2.0, 2.0, (3,), jnp.float32)),
    (spaces.Box(jnp.zeros((2, 2), jnp.uint8), 9, (2, 2), jnp.uint8),
     gymnax_spaces.Box(jnp.zeros((2, 2), jnp.uint8), 9, (2, 2), jnp.uint8)),
]


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=repr)
def test_sample_and_contains_are_gymnax_s(ours, theirs):
    for seed in range(4):
        key = jax.random.key(seed)
        a, b = ours.sample(key), theirs.sample(key)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
        assert bool(ours.contains(a))
    outside = jnp.full(np.shape(ours.sample(jax.random.key(0))), 10)
    assert bool(ours.contains(outside)) == bool(theirs.contains(outside)) is False


def test_duck_typing_reads_ours_gymnax_s_and_gymnasium_s():
    for discrete in (spaces.Discrete(3), gymnax_spaces.Discrete(3), gymnasium.spaces.Discrete(3)):
        assert spaces.is_discrete(discrete) and not spaces.is_box(discrete)
    for box in (spaces.Box(0.0, 1.0, (2,)), gymnax_spaces.Box(0.0, 1.0, (2,)), gymnasium.spaces.Box(0.0, 1.0, (2,))):
        assert spaces.is_box(box) and not spaces.is_discrete(box)
    for neither in (gymnax_spaces.Dict({"a": gymnax_spaces.Discrete(2)}), gymnasium.spaces.MultiBinary(3)):
        assert not spaces.is_box(neither) and not spaces.is_discrete(neither)


class _Actions:
    name = "Actions"

    def __init__(self, space):
        self.space = space

    def action_space(self, params):
        return self.space


@pytest.mark.parametrize("ours, theirs", PAIRS[:2], ids=repr)
def test_action_spec_is_the_same_for_either_library_s_space(ours, theirs):
    a, b = envs.action_spec(_Actions(ours), None), envs.action_spec(_Actions(theirs), None)
    assert (a.discrete, a.num_actions, a.shape) == (b.discrete, b.num_actions, b.shape)
    for x, y in ((a.low, b.low), (a.high, b.high)):
        np.testing.assert_array_equal(x, y)
