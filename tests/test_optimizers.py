"""The optimisation mechanisms the trainer builds, against references written from their
definitions: global-norm clipping + Adam, the linear learning-rate decay over the right
number of steps (policy: one step per update; value: value_iters per update), and
advantages standardised where the policy step uses them."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import purejaxvpg as pjv
from purejaxvpg.algo import losses as updates
from purejaxvpg.algo import program
from purejaxvpg.algo.program import Agent, HyperParams

# 5 updates, 3 value steps each: the policy LR decays over 5 steps, the value LR over 15
CONFIG = pjv.Config(env_id="CartPole-v1", total_steps=4 * 8 * 5, num_envs=4, num_steps=8,
                    value_iters=3, max_grad_norm=0.5, policy_lr=1e-3, value_lr=3e-3, hidden_sizes=(16,))


def _optimizers(config):
    return program.optimizers(Agent.build(config), HyperParams.from_config(config))


def _reference_updates(grads, lr, num_steps, max_grad_norm, b1=0.9, b2=0.999, eps=1e-8):
    """numpy float64, from the definitions. grads: list of flat gradient vectors.

    clip:  g <- g * min(1, c / ||g||)
    Adam:  m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
           u = -lr_k * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps),  t = k + 1
    decay: lr_k = lr * (1 - k / num_steps) for the k-th step (k = 0, 1, ...)
    """
    m = np.zeros_like(grads[0])
    v = np.zeros_like(grads[0])
    out = []
    for k, g in enumerate(grads):
        g = g * min(1.0, max_grad_norm / np.linalg.norm(g))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        t = k + 1
        lr_k = lr * max(0.0, 1.0 - k / num_steps)
        out.append(-lr_k * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    return out


def _apply(optimizer, grads):
    """Run `optimizer` on params {"w": [3], "b": [2]} with the given flat gradients;
    return the flat updates it produces."""
    params = {"b": jnp.zeros(2), "w": jnp.zeros(3)}  # flattened in key order: b, w
    state = optimizer.init(params)
    out = []
    for g in grads:
        tree = {"b": jnp.asarray(g[:2], jnp.float32), "w": jnp.asarray(g[2:], jnp.float32)}
        u, state = optimizer.update(tree, state, params)
        out.append(np.concatenate([np.asarray(u["b"]), np.asarray(u["w"])]))
    return out


def test_trainer_optimizers_equal_clipped_adam_with_linear_decay():
    """Known gradients of very different norms (some clipped, some not): Adam is
    invariant to one common scale, so only per-step clipping changes these updates."""
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(7, 5))
    norms = [3.0, 0.05, 1.2, 0.3, 8.0, 0.01, 0.6]
    grads = [d / np.linalg.norm(d) * n for d, n in zip(directions, norms)]
    policy, value = _optimizers(CONFIG)
    U, V = CONFIG.num_updates, CONFIG.num_updates * CONFIG.value_iters
    for optimizer, lr, num_steps in ((policy, CONFIG.policy_lr, U), (value, CONFIG.value_lr, V)):
        got = _apply(optimizer, grads)
        want = _reference_updates(grads, lr, num_steps, CONFIG.max_grad_norm)
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-10)


@pytest.mark.parametrize("which", ["policy", "value"])
def test_learning_rate_decays_linearly_to_zero_over_the_optimizer_steps(which):
    """With a constant gradient Adam's step is lr_k * sign(g) (m and v are exact after
    bias correction; eps shifts it by < 1e-7 here), so the step sizes read off lr_k.
    Policy: lr_k = lr (1 - k / num_updates); value: lr (1 - k / (num_updates * value_iters))."""
    policy, value = _optimizers(CONFIG)
    optimizer, lr, num_steps = {
        "policy": (policy, CONFIG.policy_lr, CONFIG.num_updates),
        "value": (value, CONFIG.value_lr, CONFIG.num_updates * CONFIG.value_iters),
    }[which]
    g = np.array([1.0, -1.0, 1.0, 1.0, -1.0])  # global norm sqrt(5) > 0.5: clipped, still constant
    steps = _apply(optimizer, [g] * (num_steps + 1))
    lr_k = np.array([np.abs(u).mean() for u in steps])
    for u in steps:
        np.testing.assert_array_equal(np.sign(u), -np.sign(g) * (np.abs(u) > 0))
    expected = lr * (1.0 - np.arange(num_steps + 1) / num_steps)  # the last one is 0
    np.testing.assert_allclose(lr_k, expected, rtol=5e-5, atol=1e-10)  # float32 Adam


def test_constant_learning_rate_without_annealing():
    policy, value = _optimizers(pjv.Config(**{**CONFIG.__dict__, "anneal_lr": False}))
    g = np.ones(5)
    for optimizer, lr in ((policy, CONFIG.policy_lr), (value, CONFIG.value_lr)):
        steps = _apply(optimizer, [g] * 20)
        np.testing.assert_allclose([np.abs(u).mean() for u in steps], lr, rtol=5e-5)


@pytest.fixture(scope="module")
def spied_run():
    """A run whose policy step reports, instead of its loss and entropy, the mean and
    std of the advantages it was given: what the trainer really feeds the policy."""
    real = updates.policy_step
    calls = []

    def spy(apply_actor, params, opt_state, optimizer, obs, actions, advantages, ent_coef, mask=None):
        calls.append(advantages.shape)
        params, opt_state, stats = real(apply_actor, params, opt_state, optimizer, obs,
                                        actions, advantages, ent_coef, mask=mask)
        stats = stats.replace(loss=advantages.mean(), entropy=advantages.std())
        return params, opt_state, stats

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(updates, "policy_step", spy)
        result = pjv.train(CONFIG, num_seeds=2, seed=3)
    assert calls and calls[0] == (CONFIG.batch_size,), calls
    return result


def test_policy_step_gets_standardised_advantages(spied_run):
    """(A - mean A) / (std A + 1e-8) over the batch: mean 0, std 1 in every update.
    CartPole's raw advantages (reward 1 per step, V ~ 0 at first) have a mean of several
    units, so passing them unnormalised fails both checks."""
    mean = spied_run.metrics["policy_loss"]
    std = spied_run.metrics["entropy"]
    np.testing.assert_allclose(mean, 0.0, atol=1e-5)
    np.testing.assert_allclose(std, 1.0, rtol=1e-4)


def test_a_run_takes_exactly_the_steps_its_schedules_decay_over(spied_run):
    """The optimizer states count num_updates policy steps and num_updates * value_iters
    value steps: the learning rates reach 0 exactly when training ends."""
    state = spied_run.final_state
    for opt_state, expected in (
        (state.actor_opt_state, CONFIG.num_updates),
        (state.critic_opt_state, CONFIG.num_updates * CONFIG.value_iters),
    ):
        counts = optax.tree_utils.tree_get_all_with_path(opt_state, "count")
        assert len(counts) == 2  # Adam's and the schedule's
        for _, count in counts:
            np.testing.assert_array_equal(count, expected)
