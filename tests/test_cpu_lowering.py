"""Our programs lower the Threefry hash unrolled on the CPU (host/cpu_lowering.py): the same
bits as JAX's default rolled loop, no while loops left for it, and only while our programs
lower."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxvpg as pjv
from purejaxvpg.host import cpu_lowering, driver

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu" or not cpu_lowering.available(),
                                reason="the CPU lowering rule of this JAX version")


def draws():
    """A fresh function each call: JAX caches a function's lowering, whatever the rules."""
    def draw(key):
        a, b = jax.random.split(key)
        return jax.random.normal(a, (64,)), jax.random.categorical(b, jnp.zeros((64, 3)))

    return draw


def lowered_text(fn, *args) -> str:
    return jax.jit(fn).lower(*args).as_text()


def test_the_unrolled_hash_draws_the_same_bits_without_loops():
    key = jax.random.key(3)
    default = jax.jit(draws()).lower(key)
    with cpu_lowering.unrolled_threefry():
        unrolled = jax.jit(draws()).lower(key)
    assert "stablehlo.while" in default.as_text()  # JAX's own CPU rule: a fori_loop per hash
    assert "stablehlo.while" not in unrolled.as_text()
    for got, want in zip(unrolled.compile()(key), default.compile()(key)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_a_users_program_lowers_as_jax_would_after_ours():
    with cpu_lowering.unrolled_threefry():
        pass
    assert "stablehlo.while" in lowered_text(lambda k: jax.random.uniform(k, (3,)), jax.random.key(0))


def test_training_computes_the_same_numbers_either_way(tiny_config, monkeypatch):
    """pjv.train with the unrolled hash equals pjv.train with JAX's default lowering."""
    unrolled = pjv.train(tiny_config, num_seeds=3, seed=5)
    monkeypatch.setattr(cpu_lowering, "_parts", lambda: None)  # JAX's default rule
    driver.compile_blocks.cache_clear()
    default = pjv.train(tiny_config, num_seeds=3, seed=5)
    driver.compile_blocks.cache_clear()
    for name, values in default.metrics.items():
        np.testing.assert_array_equal(unrolled.metrics[name], values, err_msg=name)
    for got, want in zip(jax.tree.leaves(unrolled.params), jax.tree.leaves(default.params)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
