"""The whole run as one pure function of a PRNG key: `make_train(config) -> train(key)`.

    train(key) = run(init(key), updates 0 .. num_updates - 1)
    update:  rollout -> values -> GAE -> psi (pg_weight) -> policy step -> value steps -> metrics
    every eval_every updates (optional): greedy and stochastic evaluation episodes
    after the last update (final_eval, on by default): the same evaluation, kept in the state

`jax.jit(jax.vmap(train))(keys)` runs many seeds in one call. Nothing here touches the
host (files, clocks, memory checks): `purejaxvpg/host/driver.py` compiles, times and runs
this program, whole or in blocks of updates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

from purejaxvpg import envs
from purejaxvpg.algo import envstack, gae, greedy, losses, pg_weight, prng, recurrent, rollout
from purejaxvpg.algo.evaluate import make_evaluate
from purejaxvpg.algo.metrics import EpisodeSummary, EvalMetrics, UpdateMetrics, summarize_episodes
from purejaxvpg.algo.networks import Actor, Critic, RecurrentActor, RecurrentCritic
from purejaxvpg.config import SWEEPABLE, Config


@struct.dataclass
class TrainState:
    """Everything a run carries from one update to the next (one seed)."""

    actor_params: object
    critic_params: object
    actor_opt_state: object
    critic_opt_state: object
    runner: rollout.EnvRunnerState
    episodes: EpisodeSummary  # last summary, carried when no episode ends
    updates_done: jax.Array  # int32 []
    eval_key: jax.Array  # evaluation's own stream: evaluating never changes training's
    # pg_weight 'episode_return' only: the discounted return so far of each environment's
    # episode in progress (pg_weight.EpisodeSoFar, [E] leaves); None (no leaves) otherwise
    episode_so_far: pg_weight.EpisodeSoFar | None = None
    # config.final_eval only: the evaluation after update num_updates - 1 (EvalMetrics of
    # scalars), NaN until the block holding that update has run; None (no leaves) otherwise
    final_eval: EvalMetrics | None = None


class _HyperParams:
    """The plain-number hyperparameters a sweep may batch: one attribute per Config field
    that declares `sweep=` (config.SWEEPABLE), keyword-only.

    Leaves are Python numbers (compiled in as constants: a normal run) or arrays with a
    leading [runs] axis vmapped like seeds (a sweep; see `purejaxvpg.train(..., hparams=)`).
    The greedy schedule's ends (greedy.py) may be None (no leaf) or the number 0: off.
    """

    @classmethod
    def from_config(cls, config: Config) -> HyperParams:
        return cls(**{name: getattr(config, name) for name in SWEEPABLE})


# Built from the declaration: a Config field marked `sweep=` is a leaf here at once.
HyperParams = struct.dataclass(type("HyperParams", (_HyperParams,), {
    "__annotations__": {name: object for name in SWEEPABLE}, "__module__": __name__,
    "__doc__": _HyperParams.__doc__, "greedy_start": None, "greedy_end": None,
}), kw_only=True)


@dataclasses.dataclass(frozen=True, eq=False)  # one Agent is one build: compared by identity
class Agent:
    """What a config builds once, before anything is traced: the environment (built here
    and nowhere else in a run), its training and evaluation stacks, the two networks and
    (with eval_every) the evaluation. The memory estimate, the evaluation and a trained
    policy read these stacks. Holds no arrays, so one Agent serves every seed. (Some
    environments must be built outside a trace.)"""

    config: Config
    base: tuple  # (env, env_params) before any wrapper (envstack.base_env)
    stack: envstack.EnvStack  # num_envs environments, for training
    eval_stack: envstack.EnvStack | None  # eval_episodes environments (config.evaluates); else None
    actor: Actor
    critic: Critic
    evaluate: Callable | None  # evaluate.make_evaluate(config, actor, eval_stack) (config.evaluates), or None

    @classmethod
    def build(cls, config: Config, env=None, env_params=None) -> Agent:
        """Environment and networks for a validated config (no compile); `env`/`env_params`:
        a user's environment object instead of config.env_id's."""
        base = envstack.base_env(config, env, env_params)
        stack = envstack.wrap(config, base, config.num_envs)
        body = dict(hidden_sizes=config.hidden_sizes, activation=config.activation, encoder=config.encoder,
                    cnn_channels=config.cnn_channels)
        head = dict(action_size=stack.spec.size, discrete=stack.spec.discrete, log_std_init=config.log_std_init,
                    learn_log_std=config.learn_log_std)
        if config.recurrent == "gru":
            actor = RecurrentActor(**body, **head, recurrent_size=config.recurrent_size)
            critic = RecurrentCritic(**body, recurrent_size=config.recurrent_size)
        else:
            actor, critic = Actor(**body, **head), Critic(**body)
        eval_stack = envstack.wrap(config, base, config.eval_episodes, evaluation=True) if config.evaluates else None
        evaluate = make_evaluate(config, actor, eval_stack) if config.evaluates else None
        return cls(config=config, base=base, stack=stack, eval_stack=eval_stack, actor=actor, critic=critic,
                   evaluate=evaluate)

    @property
    def recurrent(self) -> bool:
        """The networks carry a hidden state (config.recurrent 'gru')."""
        return self.config.recurrent != "none"

    def initial_hidden(self, num_envs: int) -> recurrent.RecurrentState | None:
        """Zero hidden states for `num_envs` environments, or None (not recurrent)."""
        return recurrent.RecurrentState.zeros(num_envs, self.config.recurrent_size) if self.recurrent else None

    def init_params(self, key_actor: jax.Array, key_critic: jax.Array):
        """(actor, critic) parameters, initialised on one dummy observation."""
        dummy_obs = jnp.zeros((1, *self.stack.obs_shape), jnp.float32)
        if not self.recurrent:
            return self.actor.init(key_actor, dummy_obs), self.critic.init(key_critic, dummy_obs)
        hidden, first = self.initial_hidden(1), jnp.ones(1, bool)
        return (self.actor.init(key_actor, hidden.actor, dummy_obs, first),
                self.critic.init(key_critic, hidden.critic, dummy_obs, first))

    def stack_of(self, num_envs: int) -> envstack.EnvStack:
        """An evaluation stack of `num_envs` environments around this agent's environment
        (observation statistics frozen, rewards unscaled); builds no environment."""
        if self.eval_stack is not None and self.eval_stack.num_envs == num_envs:
            return self.eval_stack
        return envstack.wrap(self.config, self.base, num_envs, evaluation=True)


def make_train(config: Config, env=None, env_params=None):
    """Return `train(key) -> (final TrainState, UpdateMetrics [num_updates], EvalMetrics [num_evals])`
    for one seed, with the config's own hyperparameters compiled in.

    Pure and jit/vmap-safe: `jax.jit(jax.vmap(train))(keys)` trains len(keys) seeds.
    Validates the config first. `env`/`env_params`: train this environment object (any
    that honours the contract in envs/__init__.py); config.env_id then only names the run.
    """
    agent = Agent.build(config.validate(own_env=env is not None), env=env, env_params=env_params)
    hp = HyperParams.from_config(config)
    return lambda key: train(agent, hp, key)


def train(agent: Agent, hp: HyperParams, key: jax.Array):
    """One seed's whole run: init, then every update (see `run`)."""
    return run(agent, hp, init(agent, hp, key), 0, agent.config.num_updates)


def optimizers(agent: Agent, hp: HyperParams):
    """(policy, value) optimizers: Adam, optionally after global-norm clipping, with an
    optional linear decay to 0 over the run's optimizer steps.

    `hp` may be traced (a sweep), so the decay is written out:
    lr_k = lr * max(0, 1 - k / total_steps) after k optimizer steps.
    """
    c = agent.config

    def adam(lr, total_steps):
        schedule = (lambda k: lr * jnp.clip(1.0 - k / total_steps, 0.0, 1.0)) if c.anneal_lr else lr
        clip = [optax.clip_by_global_norm(c.max_grad_norm)] if c.max_grad_norm else []
        return optax.chain(*clip, optax.adam(schedule))

    return adam(hp.policy_lr, c.num_updates), adam(hp.value_lr, c.num_updates * hp.value_iters)


def init(agent: Agent, hp: HyperParams, key: jax.Array) -> TrainState:
    """Fresh networks, optimizer states and environments; key: one seed's scalar key."""
    actor_optimizer, critic_optimizer = optimizers(agent, hp)
    streams = prng.RunStreams.of(key)  # one stream per consumer (see prng.py)
    actor_params, critic_params = agent.init_params(streams.actor, streams.critic)
    runner = rollout.reset(agent.stack.env, agent.stack.env_params, streams.env,
                           agent.initial_hidden(agent.config.num_envs))
    # reward scaling discounts with this run's gamma (a sweep's own), not the config's
    runner = runner.replace(env_state=envs.set_return_discount(runner.env_state, hp.gamma))
    return TrainState(
        actor_params=actor_params,
        critic_params=critic_params,
        actor_opt_state=actor_optimizer.init(actor_params),
        critic_opt_state=critic_optimizer.init(critic_params),
        runner=runner,
        episodes=EpisodeSummary.zeros(),
        updates_done=jnp.zeros((), jnp.int32),
        eval_key=streams.evaluation,
        episode_so_far=pg_weight.EpisodeSoFar.zeros(agent.config.num_envs)
        if agent.config.pg_weight == "episode_return" else None,
        final_eval=EvalMetrics.not_taken() if agent.config.final_eval else None,
    )


def acting(agent: Agent, actor_params):
    """The policy rollout.collect runs: obs -> distribution, or for a recurrent agent one
    actor step per environment step, (RecurrentState, obs, first) -> (RecurrentState, distribution)
    (the critic's state is left to the update: recurrent.py)."""
    if not agent.recurrent:
        return lambda obs: agent.actor.apply(actor_params, obs)

    def act(hidden, obs, first):
        h, dist = agent.actor.apply(actor_params, hidden.actor, obs, first)
        return hidden.replace(actor=h), dist

    return act


def update(agent: Agent, hp: HyperParams, state: TrainState) -> tuple[TrainState, UpdateMetrics]:
    """One VPG update on one rollout of num_steps x num_envs steps."""
    c, stack = agent.config, agent.stack
    T, E = c.num_steps, c.num_envs
    # [T, E, ...] -> [T * E, ...], on the CPU materialised seed-major. Under vmap a scan's
    # outputs are [T, seeds, E]; without the barrier XLA folds the seed-major transpose into
    # each later reduction over T * E, whose summation order then depends on the number of
    # seeds. With it, every reduction over a seed's samples reads them contiguously, in the
    # same order for any batch of seeds (a seed's results do not depend on the device count
    # or chunk it ran in: tests/test_train.py, test_devices.py). Not on accelerators, where
    # bit-for-bit is not promised and the extra copy has not been measured.
    barrier = jax.lax.optimization_barrier if jax.default_backend() == "cpu" else (lambda x: x)
    flat = lambda x: barrier(x.reshape(T * E, *x.shape[2:]))  # noqa: E731
    actor_optimizer, critic_optimizer = optimizers(agent, hp)

    # 1. Rollout with the current policy: every leaf [T, E, ...]; with the greedy schedule
    #    a step takes the mode with probability p(k), k = this update's 0-based index.
    greedy_on = greedy.is_on(hp.greedy_start, hp.greedy_end)
    p_greedy = greedy.probability(c, hp.greedy_start, hp.greedy_end, state.updates_done) if greedy_on else None
    runner, batch = rollout.collect(
        acting(agent, state.actor_params), stack.env, stack.env_params, stack.spec, state.runner, T,
        unroll=c.scan_unroll, greedy=p_greedy,
    )
    # the steps the policy-gradient term uses: all, or (greedy_policy_loss 'exclude') the sampled ones
    sampled = flat(~batch.greedy) if greedy_on and c.greedy_policy_loss == "exclude" else None

    # 2. The critic over s_t and s'_t (the pre-reset next observation): V, V' [T, E].
    if agent.recurrent:
        # the rollout's sequence from the hidden states it started from (stored in the runner);
        # V(s'_t) with the critic state that saw s_t; the next rollout continues from h_{T-1}
        h0 = state.runner.hidden
        hs = recurrent.unroll(agent.critic, state.critic_params, h0.critic, batch.obs, batch.first, c.scan_unroll)
        values = recurrent.heads(agent.critic, state.critic_params, hs).reshape(T, E)
        next_values = recurrent.next_values(agent.critic, state.critic_params, hs, batch.next_obs)
        runner = runner.replace(hidden=runner.hidden.replace(critic=hs[-1]))
        apply_actor = recurrent.sequence_apply(agent.actor, h0.actor, batch.first, T, E, c.scan_unroll)
        apply_critic = recurrent.sequence_apply(agent.critic, h0.critic, batch.first, T, E, c.scan_unroll)
    else:
        v = agent.critic.apply(state.critic_params, jnp.concatenate([flat(batch.obs), flat(batch.next_obs)]))
        values, next_values = v[: T * E].reshape(T, E), v[T * E :].reshape(T, E)
        apply_actor, apply_critic = agent.actor.apply, agent.critic.apply

    # 3. GAE(gamma, lambda): bootstrap on truncation, not on termination.  [T, E] each.
    advantages, returns = gae.gae(
        batch.reward, values, next_values, batch.terminated, batch.truncated,
        hp.gamma, hp.gae_lambda, method=c.gae_method, unroll=c.scan_unroll,
    )
    # 3b. Psi_t, the weight of each grad log pi(a_t|s_t): A_t, R^f_t or R(tau) (Config.pg_weight). [T, E]
    psi, episode_so_far = pg_weight.psi(
        c.pg_weight, advantages, batch.reward, next_values, batch.terminated, batch.truncated,
        state.episode_so_far, hp.gamma, unroll=c.scan_unroll,
    )
    psi = flat(psi)
    if c.normalize_advantages:  # standardised over the batch (over the sampled steps with a mask)
        psi = losses.normalize(psi, sampled)

    # 4. One policy-gradient step: theta <- theta + lr * mean_t[grad log pi(a_t|s_t) Psi_t].
    obs, actions = flat(batch.obs), flat(batch.action)
    actor_params, actor_opt_state, policy = losses.policy_step(
        apply_actor, state.actor_params, state.actor_opt_state, actor_optimizer,
        obs, actions, psi, hp.ent_coef, mask=sampled,
    )

    # 5. value_iters regression steps: phi <- phi - lr * grad mean_t[(V_phi(s_t) - R_t)^2].
    critic_params, critic_opt_state, value = losses.value_steps(
        apply_critic, state.critic_params, state.critic_opt_state, critic_optimizer,
        obs, flat(returns), hp.value_iters, unroll=c.scan_unroll,
    )

    # 6. Metrics, reduced to scalars.
    episodes, finished = summarize_episodes(
        flat(batch.episode_return), flat(batch.episode_length), flat(batch.episode_finished), state.episodes
    )
    state = TrainState(
        actor_params, critic_params, actor_opt_state, critic_opt_state,
        runner, episodes, state.updates_done + 1, state.eval_key, episode_so_far, state.final_eval,
    )
    metrics = UpdateMetrics.of(
        episodes, finished, state.updates_done * (T * E), policy, value, flat(values), flat(returns),
        None if batch.greedy is None else flat(batch.greedy),
    )
    return state, metrics


def run(agent: Agent, hp: HyperParams, state: TrainState, first_update, length: int):
    """`length` updates from global update index `first_update` (keep it unbatched under
    vmap: it decides when to evaluate); `length` is static.

    Returns (state, UpdateMetrics [length], EvalMetrics [length // eval_every]): an
    evaluation after every eval_every-th update, so `first_update` and `length` must be
    multiples of eval_every, except a whole run (0, num_updates), whose last
    num_updates % eval_every updates have none. Updates past num_updates (a last,
    partial block) leave the state unchanged and report zeros, as do their evaluations.
    Running the updates in several calls gives the same result as one call: the run's
    randomness is all in the state. With config.final_eval, the call whose updates include
    the last one (num_updates - 1) also stores the final evaluation in the state.
    """
    c = agent.config
    every = c.eval_every or length
    periods, rest = divmod(length, every)
    if c.eval_every and rest and not (isinstance(first_update, int) and first_update + length == c.num_updates):
        raise ValueError(f"length: a multiple of eval_every={c.eval_every} (or the whole run), got {length}.")
    past_end = not (isinstance(first_update, int) and first_update + length <= c.num_updates)

    def step(state, u):
        return update(agent, hp, state)

    def guarded_step(state, u):
        zeros = _zeros(jax.eval_shape(step, state, u)[1])
        return jax.lax.cond(u < c.num_updates, step, lambda st, _: (st, zeros), state, u)

    step_fn = guarded_step if past_end else step
    if not c.eval_every:  # one loop over the updates
        state, metrics = jax.lax.scan(step_fn, state, first_update + jnp.arange(length))
        return final_evaluation(agent, state, first_update, length), metrics, EvalMetrics.empty()

    def period(state, first):
        """eval_every updates, then one evaluation."""
        state, metrics = jax.lax.scan(step_fn, state, first + jnp.arange(every))
        last = first + every - 1  # the 0-based update the evaluation follows
        evaluation = lambda: agent.evaluate(  # noqa: E731
            state.actor_params, state.runner.env_state, prng.in_run_eval_key(state.eval_key, last)
        )
        if past_end:
            zeros = _zeros(jax.eval_shape(evaluation))
            evals = jax.lax.cond(last < c.num_updates, evaluation, lambda: zeros)
        else:
            evals = evaluation()
        return state, (metrics, evals)

    state, (metrics, evals) = jax.lax.scan(period, state, first_update + every * jnp.arange(periods))
    metrics = jax.tree.map(lambda x: x.reshape(periods * every), metrics)  # [length - rest]
    if rest:
        state, tail = jax.lax.scan(step_fn, state, first_update + periods * every + jnp.arange(rest))
        metrics = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), metrics, tail)
    return final_evaluation(agent, state, first_update, length, evals), metrics, evals


def final_evaluation(agent: Agent, state: TrainState, first_update, length: int, evals=None) -> TrainState:
    """The state after a call of `run`, with config.final_eval: its final evaluation set if
    the call's updates [first_update, first_update + length) hold the last one.

    The final evaluation is the evaluation after update L = num_updates - 1, with that
    evaluation's key (prng.in_run_eval_key(eval_key, L)): when eval_every divides
    num_updates it is the last in-run evaluation (`evals`, taken from there, not played
    twice), otherwise it is played here. Either way it never draws from training's streams.
    """
    c = agent.config
    if not c.final_eval:
        return state
    last = c.num_updates - 1
    holds_last = (first_update <= last) & (last < first_update + length)  # a bool if first_update is
    if isinstance(holds_last, bool) and not holds_last:
        return state
    if c.eval_every and c.num_updates % c.eval_every == 0:
        # evals[k] followed update first_update + (k + 1) * eval_every - 1; k for L, clipped
        # in calls that do not hold it (their value is not used)
        k = jnp.clip((last - first_update) // c.eval_every, 0, length // c.eval_every - 1)
        taken = jax.tree.map(lambda e: e[k], evals)
    else:
        # after the call, the state is the one after update L (updates past the end change nothing)
        play = lambda: agent.evaluate(  # noqa: E731
            state.actor_params, state.runner.env_state, prng.in_run_eval_key(state.eval_key, last)
        )
        taken = play() if isinstance(holds_last, bool) else jax.lax.cond(holds_last, play, lambda: state.final_eval)
    if isinstance(holds_last, bool):
        return state.replace(final_eval=taken)
    return state.replace(final_eval=jax.tree.map(lambda new, old: jnp.where(holds_last, new, old),
                                                 taken, state.final_eval))


def _zeros(shapes):
    """Zeros shaped like a tree of jax.ShapeDtypeStruct."""
    return jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
