"""Every validation error names the field and the allowed range, before any compile."""

import pytest
from conftest import Compiles, forbid_jit

import purejaxvpg as pjv


@pytest.mark.parametrize(
    "changes, field, allowed",
    [
        ({"env_id": "CartPole-v2"}, "env_id", "CartPole-v1"),  # close match suggested
        ({"env_id": "NoSuchEnv"}, "env_id", "Registered ids"),
        ({"total_steps": 0}, "total_steps", ">= 1"),
        ({"total_steps": 100}, "total_steps", ">= num_envs * num_steps"),
        ({"total_steps": 2**31}, "total_steps", "<= 2147483647"),
        ({"num_envs": 0}, "num_envs", ">= 1"),
        ({"num_envs": -3}, "num_envs", ">= 1"),
        ({"num_steps": 0}, "num_steps", ">= 1"),
        ({"num_steps": 2.5}, "num_steps", "integer"),
        ({"value_iters": 0}, "value_iters", ">= 1"),
        ({"gamma": 1.01}, "gamma", "[0, 1]"),
        ({"gamma": -0.1}, "gamma", "[0, 1]"),
        ({"gamma": float("nan")}, "gamma", "[0, 1]"),
        ({"gae_lambda": 1.5}, "gae_lambda", "[0, 1]"),
        ({"gae_lambda": -0.5}, "gae_lambda", "[0, 1]"),
        ({"policy_lr": -1e-3}, "policy_lr", ">= 0"),
        ({"value_lr": -1.0}, "value_lr", ">= 0"),
        ({"value_lr": float("inf")}, "value_lr", "finite"),
        ({"ent_coef": -0.01}, "ent_coef", ">= 0"),
        ({"max_grad_norm": 0.0}, "max_grad_norm", "> 0 or None"),
        ({"max_grad_norm": -1.0}, "max_grad_norm", ">= 0"),
        ({"hidden_sizes": ()}, "hidden_sizes", "non-empty"),
        ({"hidden_sizes": (64, 0)}, "hidden_sizes", ">= 1"),
        ({"activation": "sigmoid"}, "activation", "tanh"),
        ({"log_std_init": 5.0}, "log_std_init", "<= 2"),
        ({"anneal_lr": "yes"}, "anneal_lr", "True or False"),
        ({"value_iters": 2.5}, "value_iters", "integer >= 1"),
        # 1024 steps of 8 x 64: 2 updates, so evaluating every 3 would never evaluate
        ({"total_steps": 1024, "num_envs": 8, "num_steps": 64, "eval_every": 3}, "eval_every",
         "<= num_updates = 2"),
    ],
)
def test_validation_error_names_field_and_range(changes, field, allowed):
    with pytest.raises(ValueError) as info:
        pjv.Config(**changes).validate()
    message = str(info.value)
    assert message.startswith(f"{field}:"), message
    assert allowed in message, message


def test_defaults_are_valid_and_documented():
    import dataclasses

    config = pjv.Config().validate()
    assert config.hidden_sizes == (64, 64) and config.activation == "tanh"
    assert config.gamma == 0.99 and config.gae_lambda == 0.97 and config.value_iters > 1
    for field in dataclasses.fields(pjv.Config):
        assert field.metadata.get("doc"), f"Config.{field.name} has no documentation"


def test_train_validates_before_compiling(monkeypatch):
    """A bad config must fail in train() without ever reaching jax.jit."""
    import jax

    def no_jit(*args, **kwargs):
        raise AssertionError("jit called before validation")

    monkeypatch.setattr(jax, "jit", no_jit)
    with pytest.raises(ValueError, match="^gamma:"):
        pjv.train(pjv.Config(gamma=2.0), num_seeds=2)
    with pytest.raises(ValueError, match="^num_seeds:"):
        pjv.train(pjv.Config(), num_seeds=0)


def test_action_space_mismatch_is_refused_before_compile():
    with pytest.raises(ValueError, match="^rescale_actions: only for continuous"):
        pjv.train(pjv.Config(env_id="CartPole-v1", rescale_actions=True), num_seeds=1)


def test_brax_id_without_the_extra_or_unknown_name_is_clear():
    from purejaxvpg import envs

    with pytest.raises(ValueError, match="^env_id:"):
        pjv.Config(env_id="brax/not_a_brax_env").validate()
    if "brax/ant" not in envs.registered():  # extra not installed: say how to get it
        with pytest.raises(ValueError, match="pip install 'purejaxvpg\\[brax\\]'"):
            pjv.Config(env_id="brax/ant").validate()


def test_run_where_not_even_one_seed_fits_is_refused_before_compile():
    with pytest.raises(ValueError, match="^num_envs: one seed needs .* GiB"):
        pjv.train(pjv.Config(num_envs=65536, num_steps=1024, total_steps=65536 * 1024), num_seeds=4)


def test_chunk_size_larger_than_memory_allows_is_refused():
    config = pjv.Config(num_envs=512, num_steps=1024, total_steps=512 * 1024)  # ~2.4 GiB a seed: 100 do not fit
    with pytest.raises(ValueError, match="^chunk_size: at most"):
        pjv.train(config, num_seeds=100, chunk_size=100)


@pytest.mark.parametrize("env_id", sorted(pjv.PRESETS))
def test_every_preset_is_a_valid_config_for_its_environment(env_id):
    from purejaxvpg import envs

    if env_id.startswith("brax/") and env_id not in envs.registered():
        pytest.skip("brax extra not installed")
    config = pjv.Config.preset(env_id)
    assert config.env_id == env_id
    config.validate()
    assert pjv.Config.preset(env_id, num_envs=2).num_envs == 2


def test_preset_of_an_environment_without_one_is_the_defaults():
    assert pjv.Config.preset("Chain-known") == pjv.Config(env_id="Chain-known")


def test_unknown_gae_method_is_a_clear_error():
    with pytest.raises(ValueError, match="gae_method: must be one of scan, associative"):
        pjv.Config(gae_method="parallel").validate()
    with pytest.raises(ValueError, match="scan_unroll"):
        pjv.Config(scan_unroll=0).validate()


def test_numpy_scalars_are_the_numbers_they_hold():
    import numpy as np

    config = pjv.Config(num_envs=np.int64(4), gamma=np.float32(0.5), anneal_lr=np.bool_(False),
                        hidden_sizes=tuple(np.array([32, 16])))
    assert config == pjv.Config(num_envs=4, gamma=0.5, anneal_lr=False, hidden_sizes=(32, 16))
    assert type(config.num_envs) is int and type(config.gamma) is float
    assert type(config.hidden_sizes[0]) is int
    config.validate()


def _hparams(runs=1, **changes):
    """`runs` runs' valid HyperParams (Python lists), with `changes` applied."""
    values = {"policy_lr": 1e-3, "value_lr": 1e-3, "gamma": 0.9, "gae_lambda": 0.9,
              "ent_coef": 0.0, "value_iters": 2}
    return pjv.HyperParams(**{k: [v] * runs for k, v in values.items()} | changes)


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("gamma", 2.0, "[0, 1]"),
        ("gae_lambda", -0.1, "[0, 1]"),
        ("policy_lr", -1e-3, ">= 0"),
        ("value_lr", float("inf"), "finite"),
        ("ent_coef", float("nan"), "finite"),
        ("value_iters", 0, "integer >= 1"),
        ("value_iters", 1.5, "integer >= 1"),
    ],
)
def test_sweep_hyperparameters_are_validated_before_compiling(field, value, allowed, monkeypatch):
    """Every element of a sweep's HyperParams is held to its Config field's range."""
    forbid_jit(monkeypatch)
    with pytest.raises(Compiles):  # the valid one reaches compiling
        pjv.train(pjv.Config(), hparams=_hparams())
    with pytest.raises(ValueError, match=f"^hparams.{field}: must") as info:
        pjv.train(pjv.Config(), num_seeds=2, hparams=_hparams(2, **{field: [getattr(pjv.Config(), field), value]}))
    assert allowed in str(info.value)


def test_sweep_hyperparameters_need_one_value_per_run():
    with pytest.raises(ValueError, match=r"^hparams.gamma: must have shape \(2,\), got \(1,\)"):
        pjv.train(pjv.Config(), num_seeds=2, hparams=_hparams(2, gamma=[0.9]))
    with pytest.raises(ValueError, match="^hparams: must be a purejaxvpg.HyperParams"):
        pjv.train(pjv.Config(), hparams={"gamma": [0.9]})
