"""`check_env(env, params)`: the environment contract of `envs/__init__.py`, checked without compiling.

A user's environment is traced once with `jax.eval_shape` (shapes and dtypes only, no XLA
compile, no device work), so a wrong return arity, a missing final observation or a dtype
that drifts between reset and step is reported as a ValueError naming the fix, before the
trainer builds anything, instead of as a scan-carry error deep inside a compiled program.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from purejaxvpg.envs.spaces import action_spec, is_box, is_discrete

_LEGACY_HINT = (
    "it looks like a legacy gymnax < 1.0 step returning (obs, state, reward, done, info), with the time "
    "limit folded into `done`. Return (obs, state, reward, terminated, truncated, info) with "
    "info['final_observation'] (the observation before the auto-reset), or wrap the environment in "
    "the legacy adapter: `from envs.legacy import LegacyStep; env = LegacyStep(env)`"
)


def check_env(env, params) -> None:
    """Raise ValueError (message starting "env: ...") at the first broken part of the contract.

    Checks: a readable time limit (`params.max_steps_in_episode`), a Discrete or Box action
    space, `reset(key, params) -> (obs, state)`, a 6-value `step`, boolean scalar
    `terminated`/`truncated`, `info["final_observation"]` shaped like the observation, and one
    observation shape and dtype from reset and from step, and that shape in
    `env.observation_space(params)`; at least one action (Discrete(n >= 1), a Box of shape
    (1,) or more); and, in one jitted rollout of max_steps_in_episode + 1 random steps (for
    limits up to ROLLOUT_CAP), that an episode ends.
    """
    name = getattr(env, "name", type(env).__name__)
    _check_time_limit(name, params)
    _check_action_space(env, params)
    key = jax.random.key(0)
    reset_out = _trace(name, "reset(key, params)", lambda k: env.reset(k, params), key)
    if not (isinstance(reset_out, tuple) and len(reset_out) == 2):
        raise ValueError(
            f"env: {name}.reset(key, params) returned {_describe(reset_out)}; it must return (obs, state)."
        )
    obs, state = reset_out
    _check_array(name, "the observation from reset", obs)

    def reset_and_step(k):
        key_reset, key_action, key_step = jax.random.split(k, 3)
        _, s = env.reset(key_reset, params)
        action = env.action_space(params).sample(key_action)
        return env.step(key_step, s, action, params)

    step_out = _trace(name, "step(key, state, action, params)", reset_and_step, key)
    if isinstance(step_out, tuple) and len(step_out) == 5:
        raise ValueError(f"env: {name}.step returned 5 values; {_LEGACY_HINT}.")
    if not (isinstance(step_out, tuple) and len(step_out) == 6):
        raise ValueError(
            f"env: {name}.step returned {_describe(step_out)}; it must return 6 values "
            "(obs, state, reward, terminated, truncated, info)."
        )
    step_obs, _, reward, terminated, truncated, info = step_out
    _check_array(name, "the observation from step", step_obs)
    if (step_obs.shape, step_obs.dtype) != (obs.shape, obs.dtype):
        raise ValueError(
            f"env: {name}'s observation drifts: reset gives {_sig(obs)}, step gives {_sig(step_obs)}; "
            "return the same shape and dtype from both (e.g. cast with .astype in one place)."
        )
    _check_array(name, "the reward", reward)
    if reward.shape != () or not jnp.issubdtype(reward.dtype, jnp.number):
        raise ValueError(f"env: {name}'s reward is {_sig(reward)}; it must be a numeric scalar per step.")
    for flag, value in (("terminated", terminated), ("truncated", truncated)):
        _check_array(name, flag, value)
        if value.shape != () or value.dtype != jnp.bool_:
            raise ValueError(
                f"env: {name}'s {flag} is {_sig(value)}; it must be a boolean scalar "
                f"(e.g. jnp.asarray({flag}, bool)). The trainer bootstraps on truncated and not on "
                "terminated, so the two must be separate flags."
            )
    _check_final_observation(name, info, obs)
    _check_observation_space(name, env, params, obs)
    if int(params.max_steps_in_episode) + 1 <= ROLLOUT_CAP:
        _check_episodes_end(name, env, params)


MAX_TIME_LIMIT = 2**31 - 1  # environments count steps in int32


def check_time_limit(env_id: str, params, label: str = "env_params") -> None:
    """A parameter whose meaning is known, whatever the environment: `max_steps_in_episode`
    is a time limit, a whole number of steps >= 1 (0 or less ends no episode, a fraction is
    no step count). ValueError naming the field (`label`: env_params or env) otherwise;
    params without one pass. The one rule for built-in and own environments alike."""
    value = getattr(params, "max_steps_in_episode", None)
    if value is None:
        return
    try:
        number = np.asarray(value)
    except (TypeError, jax.errors.TracerArrayConversionError):
        number = np.asarray(None)  # a traced or odd value: no step count
    whole = number.ndim == 0 and number.dtype.kind in "iuf" and not isinstance(value, (bool, np.bool_))
    if not whole or not np.isfinite(number) or number != np.floor(number) or not 1 <= number <= MAX_TIME_LIMIT:
        field = f"{label}.max_steps_in_episode" if label == "env_params" else label
        raise ValueError(
            f"{field}: {env_id}'s max_steps_in_episode is its time limit, a whole number of steps >= 1 "
            f"and <= {MAX_TIME_LIMIT} (steps are counted in int32); got {value!r}."
        )


def _check_time_limit(name, params) -> None:
    if getattr(params, "max_steps_in_episode", None) is None:
        raise ValueError(
            f"env: {name}'s params ({type(params).__name__}) have no max_steps_in_episode; add that field "
            "(the episode time limit, reported as truncated) so the trainer can size evaluation episodes."
        )
    check_time_limit(name, params, label="env")


def _check_action_space(env, params) -> None:
    name = getattr(env, "name", type(env).__name__)
    space = env.action_space(params)
    if not (is_discrete(space) or is_box(space)):
        raise ValueError(
            f"env: {name}'s action space is {type(space).__name__}; purejaxvpg supports "
            "a Discrete (categorical policy) and a Box (diagonal Gaussian): purejaxvpg.envs.spaces' "
            "or gymnax's. Flatten or re-encode the actions into one of them."
        )
    if is_discrete(space) and int(space.n) < 1:
        raise ValueError(f"env: {name}'s action space is Discrete({int(space.n)}); it needs at least one action.")
    if is_box(space):
        shape = tuple(int(d) for d in space.shape)
        if shape == () or 0 in shape:
            raise ValueError(
                f"env: {name}'s action space is a Box of shape {shape}; the Gaussian policy needs at least one "
                "action dimension: give it shape (1,) (a scalar action) or more."
            )
    try:
        action_spec(env, params)
    except ValueError as error:
        raise ValueError(f"env: {error}") from error


# steps of the rollout that checks episodes end: the time limit + 1, at most this many
ROLLOUT_CAP = 10_000


def _check_episodes_end(name, env, params) -> None:
    """One environment, random actions, max_steps_in_episode + 1 steps (at most ROLLOUT_CAP),
    jitted: some step must end an episode (terminated or truncated), or the trainer's
    episodes would never finish (no returns, no evaluation ever ends). Tracing cannot tell."""
    steps = min(int(params.max_steps_in_episode) + 1, ROLLOUT_CAP)

    def rollout(key):
        key_reset, key_steps = jax.random.split(key)
        _, state = env.reset(key_reset, params)

        def one(state, k):
            key_action, key_step = jax.random.split(k)
            action = env.action_space(params).sample(key_action)
            _, state, _, terminated, truncated, _ = env.step(key_step, state, action, params)
            return state, jnp.logical_or(terminated, truncated)

        _, ended = jax.lax.scan(one, state, jax.random.split(key_steps, steps))
        return ended.any()

    try:
        ended = bool(jax.jit(rollout)(jax.random.key(0)))
    except Exception as error:  # noqa: BLE001 -- running the env is the env's contract
        raise ValueError(
            f"env: {name} failed in a {steps}-step jitted rollout ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''})."
        ) from error
    if not ended:
        raise ValueError(
            f"env: {name} ended no episode in {steps} steps of random actions (max_steps_in_episode + 1); "
            "the time limit must end an episode as truncated, with the auto-reset, or no episode ever finishes."
        )


def _check_final_observation(name, info, obs) -> None:
    if not isinstance(info, Mapping) or "final_observation" not in info:
        keys = sorted(info) if isinstance(info, Mapping) else type(info).__name__
        raise ValueError(
            f"env: {name}.step's info has no 'final_observation' (info: {keys}); put the observation "
            "of the step before the auto-reset there, so the trainer can bootstrap at truncation."
        )
    final = info["final_observation"]
    _check_array(name, "info['final_observation']", final)
    if (final.shape, final.dtype) != (obs.shape, obs.dtype):
        raise ValueError(
            f"env: {name}'s info['final_observation'] is {_sig(final)} but the observation is {_sig(obs)}; "
            "it must be the observation before the auto-reset, with the same shape and dtype."
        )


def _check_observation_space(name, env, params, obs) -> None:
    """Shape only: the trainer reads the dtype from the observations themselves, and gymnax's own
    Catch-bsuite and FourRooms-misc declare a space dtype other than the one they return."""
    space = env.observation_space(params)
    shape = tuple(int(d) for d in getattr(space, "shape", ()) or ())
    if shape != tuple(obs.shape):
        raise ValueError(
            f"env: {name}.observation_space(params) has shape {list(shape)} but observations are "
            f"{_sig(obs)}; make the space describe the observations."
        )


def _trace(name, call, fn, key):
    """Shapes and dtypes of fn(key) without compiling; a failure is reported as the env's."""
    try:
        return jax.eval_shape(fn, key)
    except Exception as error:  # noqa: BLE001 -- any failure while tracing is the env's contract failing
        raise ValueError(
            f"env: {name}.{call} failed when traced with jax.eval_shape ({type(error).__name__}: {error}); "
            "reset/step must be pure JAX functions of (key, [state, action,] params)."
        ) from error


def _check_array(name, what, value) -> None:
    if not isinstance(value, jax.ShapeDtypeStruct):
        raise ValueError(
            f"env: {name}'s {what} is {_describe(value)}; it must be a single array "
            "(flatten structured observations into one array)."
        )


def _sig(value) -> str:
    return f"{value.dtype.name}{list(value.shape)}"


def _describe(value) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if isinstance(value, jax.ShapeDtypeStruct):
        return _sig(value)
    return type(value).__name__
