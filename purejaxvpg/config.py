"""Every hyperparameter of a run, in one frozen dataclass.

Defaults follow OpenAI Spinning Up's VPG where it makes sense (tanh MLP 64x64,
gamma 0.99, GAE lambda 0.97, separate Adam optimizers for policy and value, several
value steps per batch); batch size and learning rates are tuned so that CartPole-v1
is solved within 500k environment steps per seed (see README).

A field a sweep may batch declares its range (`sweep=`): config.SWEEPABLE, the sweep's
HyperParams (algo/program.py) and the range checks all come from that one declaration.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from purejaxvpg.checks import (
    COUNT,
    NONNEGATIVE,
    UNIT,
    Range,
    require_choice,
    require_finite_number,
    require_int,
)

ACTIVATIONS = ("tanh", "relu", "elu", "gelu", "silu")
ENCODERS = ("mlp", "cnn")
RECURRENT = ("none", "gru")
GAE_METHODS = ("scan", "associative")
GREEDY_SCHEDULES = ("linear", "cosine")  # see algo/greedy.py
GREEDY_POLICY_LOSS = ("exclude", "keep")
PG_WEIGHTS = ("gae", "future_return", "episode_return")  # see algo/pg_weight.py
# The longest evaluation episode: one scan step per environment step, so an environment
# whose time limit is huge (max_steps_in_episode=10**9) still ends its evaluation. 100,000
# is Craftax's own limit, the largest of any supported suite: no shipped default is cut.
EVAL_STEPS_CAP = 100_000


def _field(default, doc: str, sweep: Range | None = None):
    """A dataclass field whose documentation is kept for `--help` (metadata["doc"]); `sweep`:
    the field is a plain number a sweep may batch, in this range (metadata["sweep"])."""
    return dataclasses.field(default=default, metadata={"doc": doc, "sweep": sweep})


@dataclasses.dataclass(frozen=True)
class Config:
    # --- environment ---
    env_id: str = _field(
        "CartPole-v1",
        "Environment id; any id in `envs.registered()`, or an import path 'package.module:factory' "
        "(the factory returns an env or (env, params); a new process imports it again). The action "
        "space type (Discrete -> categorical, Box -> diagonal Gaussian) is read from the environment.",
    )
    env_params: tuple[tuple[str, object], ...] = _field(
        (),
        "Environment parameter overrides, (name, value) pairs, e.g. (('max_steps_in_episode', 200),); "
        "each name must be a field of the environment's parameter dataclass, of its type. "
        "TOML: an [env_params] table; CLI: --env-param NAME=VALUE (repeatable).",
    )

    normalize_obs: bool = _field(
        False,
        "Normalise observations by running mean and variance kept in the environment state (per seed).",
    )
    scale_rewards: bool = _field(
        False,
        "Divide rewards by a running std of the discounted return (episode statistics stay unscaled).",
    )
    rescale_actions: bool = _field(
        False,
        "Continuous actions only: the policy acts in [-1, 1] and actions are rescaled to the space's bounds.",
    )

    # --- run size (per seed) ---
    total_steps: int = _field(
        500_000,
        "Environment steps per seed; the run does total_steps // (num_envs * num_steps) updates.",
    )
    num_envs: int = _field(
        8,
        "Parallel environments per seed.",
    )
    num_steps: int = _field(
        64,
        "Steps per environment per rollout; one update per rollout of num_envs * num_steps.",
    )

    # --- returns and advantages ---
    gamma: float = _field(
        0.99,
        "Discount factor, in [0, 1].",
        sweep=UNIT,
    )
    gae_lambda: float = _field(
        0.97,
        "GAE lambda, in [0, 1]; 1 gives rewards-to-go minus the value baseline.",
        sweep=UNIT,
    )
    normalize_advantages: bool = _field(
        True,
        "Standardise advantages over the batch before the policy step.",
    )
    pg_weight: str = _field(
        "gae",
        "Weight of each grad log pi(a_t|s_t) in the policy gradient: 'gae' (the GAE advantage A_t), "
        "'future_return' (discounted rewards-to-go R^f_t from step t on) or 'episode_return' (the "
        "discounted return R(tau) of the whole episode, the same for all its steps). Unfinished "
        "episodes bootstrap from V; the value function is trained the same way for all three.",
    )

    # --- policy update ---
    policy_lr: float = _field(
        1e-3,
        "Adam learning rate of the policy (one gradient step per update).",
        sweep=NONNEGATIVE,
    )
    ent_coef: float = _field(
        0.0,
        "Entropy bonus coefficient: loss = -mean(log pi * A) - ent_coef * mean(entropy).",
        sweep=NONNEGATIVE,
    )

    # --- greedy-action schedule (rollouts; off while both ends are 0) ---
    greedy_start: float = _field(
        0.0,
        "Probability, in [0, 1], that a rollout step takes the policy's mode instead of a sample, "
        "at the first update; greedy_start = greedy_end = 0 (the default) turns the schedule off.",
        sweep=UNIT,
    )
    greedy_end: float = _field(
        0.0,
        "Greedy probability, in [0, 1], at the last update (see greedy_schedule).",
        sweep=UNIT,
    )
    greedy_schedule: str = _field(
        "linear",
        "Shape of the greedy probability from greedy_start (update 0) to greedy_end (the last update): "
        "'linear' or 'cosine' (optax.linear_schedule / cosine_decay_schedule).",
    )
    greedy_policy_loss: str = _field(
        "exclude",
        "What the policy step does with greedy steps: 'exclude' them (the score-function estimate "
        "uses sampled actions only; the critic still learns from every step) or 'keep' them (as the "
        "source text implies; biased, a mode is not a sample of the policy).",
    )

    # --- value update ---
    value_lr: float = _field(
        3e-3,
        "Adam learning rate of the value function.",
        sweep=NONNEGATIVE,
    )
    value_iters: int = _field(
        10,
        "Gradient steps of MSE(V, returns) per update, on the whole batch.",
        sweep=COUNT,
    )

    # --- optimisation (both networks) ---
    max_grad_norm: float | None = _field(
        0.5,
        "Clip each network's gradient to this global norm; None disables clipping.",
    )
    anneal_lr: bool = _field(
        True,
        "Decay both learning rates linearly to zero over the run.",
    )

    # --- networks ---
    hidden_sizes: tuple[int, ...] = _field(
        (64, 64),
        "Hidden layer widths of the actor and of the (separate) critic MLP.",
    )
    activation: str = _field(
        "tanh",
        "Hidden activation: one of tanh, relu, elu, gelu, silu.",
    )
    encoder: str = _field(
        "mlp",
        "What the actor and critic read observations with: 'mlp' flattens them into the hidden_sizes layers; "
        "'cnn' keeps an [H, W, C] image and applies one 3x3 convolution (stride 1, no padding, ReLU) per "
        "cnn_channels entry before flattening into the hidden_sizes layers (with normalize_obs: per channel). "
        "MinAtar's reference network: cnn_channels (16,), hidden_sizes (128,), activation relu.",
    )
    cnn_channels: tuple[int, ...] = _field(
        (16,),
        "Output channels of each 3x3 convolution of encoder 'cnn' (unused by 'mlp').",
    )
    recurrent: str = _field(
        "none",
        "A recurrent core in the actor and in the critic, for partially observed tasks: 'none' (each maps one "
        "observation to its output), or 'gru': the encoder's features, a dense layer of recurrent_size units, "
        "then a GRU of recurrent_size units whose state is carried from step to step (and across rollouts) and "
        "reset to zeros on the first step of every episode, after a termination or a truncation; the "
        "hidden_sizes layers read the GRU's state. The update recomputes each rollout's sequence from the "
        "states it started with.",
    )
    recurrent_size: int = _field(
        128,
        "Units of the dense layer and of the GRU of recurrent 'gru' (unused by 'none').",
    )
    log_std_init: float = _field(
        -0.5,
        "Initial log standard deviation of the Gaussian policy (continuous actions only); state-independent.",
    )
    learn_log_std: bool = _field(
        True,
        "Learn the Gaussian log standard deviation as a parameter; False keeps it fixed at log_std_init.",
    )

    # --- performance: the same computation; float rounding differs, so long runs diverge
    # like reruns on a GPU do (see benchmarks/optimisations.py) ---
    scan_unroll: int = _field(
        1,
        "Steps per loop iteration in the rollout, GAE and value-step loops: fewer iterations (less loop "
        "overhead on a GPU), longer compile. Same math; float rounding differs.",
    )
    gae_method: str = _field(
        "scan",
        "GAE as a reverse lax.scan ('scan') or a parallel prefix over affine maps ('associative': no loop). "
        "Same math; float rounding differs.",
    )

    # --- evaluation during training ---
    eval_every: int = _field(
        0,
        "Evaluate every eval_every updates inside the jitted run (greedy and stochastic episodes); 0 turns it off.",
    )
    eval_episodes: int = _field(
        16,
        "Episodes per seed per evaluation, for each of the greedy and the stochastic policy.",
    )
    eval_max_steps: int = _field(
        0,
        "Steps after which an evaluation episode is cut and counted with its return so far; 0: the "
        f"environment's time limit (max_steps_in_episode), at most {EVAL_STEPS_CAP:,}.",
    )
    final_eval: bool = _field(
        True,
        "Evaluate eval_episodes episodes per seed (greedy and stochastic) after the last update, inside the "
        "compiled run, whatever eval_every is: the number a run reports. False skips it (benchmarks).",
    )

    def __post_init__(self):
        # numpy scalars (np.int64(8) from np.arange, ...) are the plain numbers they hold:
        # validation, hashing and config.json then see a Python int / float / bool.
        plain = lambda x: x.item() if isinstance(x, np.generic) else x  # noqa: E731
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "env_params" and isinstance(value, (list, tuple)):  # [[name, value], ...] too
                value = tuple(tuple(pair) if isinstance(pair, list) else pair for pair in value)
            elif isinstance(value, (list, tuple)):  # hidden_sizes=[64, 64]: the tuple it means (hashable)
                value = tuple(map(plain, value))
            else:
                value = plain(value)
            object.__setattr__(self, field.name, value)

    @property
    def batch_size(self) -> int:
        """Transitions per update per seed."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_steps // self.batch_size

    @property
    def num_evals(self) -> int:
        """Evaluations during training: after updates eval_every, 2 * eval_every, ..."""
        return self.num_updates // self.eval_every if self.eval_every else 0

    @property
    def evaluates(self) -> bool:
        """Whether the compiled run plays evaluation episodes at all (in-run or final)."""
        return bool(self.eval_every or self.final_eval)

    @classmethod
    def preset(cls, env_id: str, **overrides) -> Config:
        """The shipped configuration for `env_id` (presets.PRESETS), with `overrides` applied.

        Environments without a preset get the defaults for their env_id.
        """
        from purejaxvpg.presets import PRESETS

        fields = {**PRESETS.get(env_id, {}), **overrides}
        return cls(env_id=env_id, **fields)

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """A Config from plain values (a TOML file, a run's config.json): lists become
        tuples, "none" clears max_grad_norm, and an unknown key is an error naming it."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(
                f"config: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}."
            )
        fixed = dict(values)
        if isinstance(fixed.get("env_params"), dict):  # a TOML table
            fixed["env_params"] = tuple(fixed["env_params"].items())
        elif isinstance(fixed.get("env_params"), list):  # config.json: [[name, value], ...]
            fixed["env_params"] = tuple(tuple(pair) for pair in fixed["env_params"])
        if isinstance(fixed.get("hidden_sizes"), list):
            fixed["hidden_sizes"] = tuple(fixed["hidden_sizes"])
        if isinstance(fixed.get("max_grad_norm"), str) and fixed["max_grad_norm"].lower() == "none":
            fixed["max_grad_norm"] = None
        return cls(**fixed)

    def validate(self, own_env: bool = False) -> Config:
        """Raise ValueError naming the field and its allowed range; return self if valid.
        `own_env`: the environment object is given (pjv.train(env=...)), not built from env_id.

        Runs before anything is compiled, so a bad value costs milliseconds, not a compile.
        """
        from purejaxvpg.envs.registry import build, is_import_path, is_registered, unknown_env_message
        from purejaxvpg.envs.suites import suite_of

        if own_env:  # pjv.train(config, env=...): env_id only names the run
            if not isinstance(self.env_id, str) or not self.env_id:
                raise ValueError(f"env_id: must name the run (a non-empty string), got {self.env_id!r}.")
        elif not is_import_path(self.env_id) and suite_of(self.env_id) is None and not is_registered(self.env_id):
            raise ValueError(unknown_env_message(str(self.env_id)))
        pairs = self.env_params
        if not isinstance(pairs, tuple) or not all(
            isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in pairs
        ):
            raise ValueError(f"env_params: must be a tuple of (name, value) pairs, got {pairs!r}.")
        if len({name for name, _ in pairs}) != len(pairs):
            raise ValueError(f"env_params: a name is given twice in {pairs!r}.")
        unlisted = suite_of(self.env_id) is not None and not is_registered(self.env_id)
        if not own_env and (pairs or is_import_path(self.env_id) or unlisted):
            # cheap (no compile): names, types, the factory; a suite's missing extra or refusal
            build(self.env_id, dict(pairs))
        for name in ("total_steps", "num_envs", "num_steps", "eval_episodes", "scan_unroll"):
            require_int(name, getattr(self, name), low=1)
        require_int("eval_every", self.eval_every, low=0)
        require_int("eval_max_steps", self.eval_max_steps, low=0, high=EVAL_STEPS_CAP)
        if self.total_steps > 2**31 - 1:
            raise ValueError(
                f"total_steps: must be <= {2**31 - 1} (env steps are counted in int32), "
                f"got {self.total_steps}."
            )
        if self.total_steps < self.batch_size:
            raise ValueError(
                f"total_steps: must be >= num_envs * num_steps = {self.batch_size} "
                f"(one update), got {self.total_steps}."
            )
        if self.eval_every > self.num_updates:
            raise ValueError(
                f"eval_every: must be 0 (off) or <= num_updates = {self.num_updates} "
                f"(total_steps // (num_envs * num_steps)), got {self.eval_every}: "
                "no evaluation would ever run."
            )
        for name in SWEEPABLE:
            check_hyperparameter(name, getattr(self, name))
        if self.max_grad_norm is not None:
            require_finite_number("max_grad_norm", self.max_grad_norm, low=0.0)
            if self.max_grad_norm <= 0:
                raise ValueError(
                    f"max_grad_norm: must be > 0 or None (no clipping), got {self.max_grad_norm}."
                )
        if not isinstance(self.hidden_sizes, tuple) or len(self.hidden_sizes) == 0:
            raise ValueError(
                f"hidden_sizes: must be a non-empty tuple of positive ints, got {self.hidden_sizes!r}."
            )
        for width in self.hidden_sizes:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ValueError(
                    f"hidden_sizes: every width must be an int >= 1, got {self.hidden_sizes!r}."
                )
        require_choice("encoder", self.encoder, ENCODERS)
        require_choice("recurrent", self.recurrent, RECURRENT)
        if isinstance(self.recurrent_size, bool) or not isinstance(self.recurrent_size, int) or self.recurrent_size < 1:
            raise ValueError(f"recurrent_size: must be an int >= 1, got {self.recurrent_size!r}.")
        if not isinstance(self.cnn_channels, tuple) or not self.cnn_channels or any(
                isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in self.cnn_channels):
            raise ValueError(f"cnn_channels: must be a non-empty tuple of ints >= 1, got {self.cnn_channels!r}.")
        require_choice("gae_method", self.gae_method, GAE_METHODS)
        require_choice("pg_weight", self.pg_weight, PG_WEIGHTS)
        if self.greedy_schedule not in GREEDY_SCHEDULES:
            raise ValueError(
                f"greedy_schedule: must be one of {', '.join(GREEDY_SCHEDULES)}, got {self.greedy_schedule!r}."
            )
        if self.greedy_policy_loss not in GREEDY_POLICY_LOSS:
            raise ValueError(
                f"greedy_policy_loss: must be one of {', '.join(GREEDY_POLICY_LOSS)}, "
                f"got {self.greedy_policy_loss!r}."
            )
        require_choice("activation", self.activation, ACTIVATIONS)
        require_finite_number("log_std_init", self.log_std_init, low=-20.0, high=2.0)
        for name in (
            "normalize_advantages", "anneal_lr", "learn_log_std",
            "normalize_obs", "scale_rewards", "rescale_actions", "final_eval",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be True or False, got {getattr(self, name)!r}.")
        return self


def check_hyperparameter(name: str, value, label: str | None = None) -> None:
    """ValueError unless `value` is in the range the SWEEPABLE field `name` declares.

    The one place those ranges are checked: Config.validate checks its fields with it, and
    `purejaxvpg.train` every element of a sweep's HyperParams (label "hparams.<name>").
    """
    if name not in SWEEPABLE:
        raise KeyError(f"{name} is not one of SWEEPABLE: {', '.join(SWEEPABLE)}")
    Config.__dataclass_fields__[name].metadata["sweep"].check(label or name, value)


# The hyperparameters that are plain numbers and may be batched arrays (a sweep vmaps over
# them like over seeds; HyperParams in algo/program.py): the fields that declare `sweep=`.
SWEEPABLE = tuple(f.name for f in dataclasses.fields(Config) if f.metadata["sweep"] is not None)
