"""`make(env_id, **overrides)`: the one way the trainer builds an environment."""

from __future__ import annotations

import dataclasses
import difflib

import gymnax

from envs import brax_adapter
from envs.known import KNOWN_ENVS


def registered() -> list[str]:
    """Every environment id `make` accepts, sorted: gymnax's registry, envs' own, and
    "brax/<name>" when the brax extra is installed."""
    brax_ids = [brax_adapter.PREFIX + n for n in brax_adapter.BRAX_ENVS] if brax_adapter.available() else []
    return sorted({*gymnax.registered_envs, *KNOWN_ENVS, *brax_ids})


def unknown_env_message(env_id: str) -> str:
    """The error text for an id that is not registered, with close matches."""
    name = env_id[len(brax_adapter.PREFIX):] if env_id.startswith(brax_adapter.PREFIX) else None
    if name in brax_adapter.BRAX_ENVS and not brax_adapter.available():
        return f"env_id: {env_id} needs Brax, which is not installed: pip install 'purejaxvpg[brax]'."
    close = difflib.get_close_matches(env_id, registered(), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return (
        f"env_id: unknown environment {env_id!r}.{hint} "
        f"Registered ids: {', '.join(registered())}."
    )


def make(env_id: str, **overrides):
    """Build a registered environment and its parameters.

    ``overrides`` replace fields of the environment's parameter dataclass
    (e.g. ``max_steps_in_episode=200``); a name that is not a field is an error,
    so a typo never silently trains on the default.

    Returns:
        (env, params): a gymnax-style environment and its parameters.
    """
    if env_id.startswith(brax_adapter.PREFIX) and env_id[len(brax_adapter.PREFIX):] in brax_adapter.BRAX_ENVS:
        if not brax_adapter.available():
            raise ValueError(unknown_env_message(env_id))
        env = brax_adapter.BraxEnv(env_id[len(brax_adapter.PREFIX):])
        params = env.default_params
    elif env_id in KNOWN_ENVS:
        env = KNOWN_ENVS[env_id]()
        params = env.default_params
    elif env_id in gymnax.registered_envs:
        env, params = gymnax.make(env_id)
    else:
        raise ValueError(unknown_env_message(env_id))
    if overrides:
        fields = {f.name for f in dataclasses.fields(params)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(
                f"overrides: {env_id} has no parameter(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(fields))}."
            )
        params = params.replace(**overrides)
    return env, params
