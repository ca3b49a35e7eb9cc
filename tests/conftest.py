import dataclasses

import pytest

import purejaxvpg as pjv


@pytest.fixture(scope="session")
def tiny_config():
    """A few updates of CartPole: enough to exercise every code path in seconds."""
    return pjv.Config(env_id="CartPole-v1", total_steps=4 * 32 * 6, num_envs=4, num_steps=32)


@pytest.fixture(scope="session")
def tiny_result(tiny_config):
    return pjv.train(tiny_config, num_seeds=8, seed=0)


def replace(config, **changes):
    return dataclasses.replace(config, **changes)
