"""The persistent compile cache (host/compile_cache.py), the way users meet it: the console
script in fresh processes from a directory outside the checkout. A second run of the same
program loads it from the cache and computes the same numbers; a changed config misses and
computes what an uncached run computes; "off" writes nothing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from purejaxvpg.host import compile_cache

TINY = ["--env-id", "CartPole-v1", "--num-seeds", "2", "--total-steps", "768", "--num-envs", "4",
        "--num-steps", "32", "--no-progress", "--no-final-eval"]  # the cache is the subject: no evaluation to compile


def train(cwd, out, cache, *flags):
    env = {**os.environ, compile_cache.ENV: str(cache)}
    done = subprocess.run(["purejaxvpg", "train", *TINY, "--out", str(out), *flags], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "config.json").read_text())["results"], np.load(out / "metrics.npz"), done


def entries(cache):
    return sorted(p.name for p in cache.rglob("*-cache"))


def test_a_second_process_loads_the_program_from_the_cache_and_computes_the_same(tmp_path):
    cache = tmp_path / "cache"
    first, first_metrics, _ = train(tmp_path, tmp_path / "a", cache)
    assert not first["compile_from_cache"]
    written = entries(cache)
    assert written, "nothing was written to the cache"
    second, second_metrics, done = train(tmp_path, tmp_path / "b", cache)
    assert second["compile_from_cache"]
    assert "loaded from the compile cache" in done.stdout
    assert entries(cache) == written  # nothing new compiled
    for name in first_metrics.files:
        np.testing.assert_array_equal(second_metrics[name], first_metrics[name], err_msg=name)


def test_a_changed_config_misses_the_cache_and_computes_what_an_uncached_run_computes(tmp_path):
    cache = tmp_path / "cache"
    train(tmp_path, tmp_path / "a", cache)  # fills the cache with gamma = 0.99
    written = entries(cache)
    changed, changed_metrics, _ = train(tmp_path, tmp_path / "b", cache, "--gamma", "0.9")
    assert not changed["compile_from_cache"]
    assert set(entries(cache)) > set(written)  # its own entries, next to the others
    uncached, uncached_metrics, _ = train(tmp_path, tmp_path / "c", "off", "--gamma", "0.9")
    assert not uncached["compile_from_cache"]
    for name in uncached_metrics.files:
        np.testing.assert_array_equal(changed_metrics[name], uncached_metrics[name], err_msg=name)


def test_off_writes_nothing_and_the_flag_overrides_the_variable(tmp_path):
    cache = tmp_path / "cache"
    results, _, _ = train(tmp_path, tmp_path / "a", cache, "--compile-cache", "off")
    assert not results["compile_from_cache"]
    assert not cache.exists()
    elsewhere = tmp_path / "elsewhere"
    train(tmp_path, tmp_path / "b", "off", "--compile-cache", str(elsewhere))
    assert entries(elsewhere)


def test_a_cache_directory_that_cannot_be_made_warns_and_the_run_goes_on(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    results, _, done = train(tmp_path, tmp_path / "a", blocker / "cache")
    assert "compile cache off" in done.stderr
    assert not results["compile_from_cache"]


def test_a_directory_set_through_jax_itself_is_kept(tmp_path):
    """A user who configured JAX's cache keeps it: entries land where JAX was told."""
    own = tmp_path / "jax-own"
    script = ("import sys, purejaxvpg as pjv; "
              "pjv.train(pjv.Config(env_id='CartPole-v1', total_steps=256, num_envs=4, num_steps=32), num_seeds=1)")
    env = {k: v for k, v in os.environ.items() if k != compile_cache.ENV}
    env["JAX_COMPILATION_CACHE_DIR"] = str(own)
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")  # where the default would have gone
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert entries(own)
    assert not (tmp_path / "xdg" / "purejaxvpg").exists()


def test_the_default_directory_is_per_user_and_per_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.default_root() == tmp_path / "purejaxvpg" / "jax-cache"
    tag = compile_cache.host_tag()
    assert tag == compile_cache.host_tag() and "/" not in tag


@pytest.mark.parametrize("text", ["", "  "])
def test_an_empty_cache_setting_is_refused_by_name(text, tmp_path):
    done = subprocess.run(["purejaxvpg", "train", *TINY, "--compile-cache", text], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("purejaxvpg: error: compile_cache:"), done.stderr
