"""`make(env_id, **overrides)`: the one way the trainer builds an environment.

Ids are built in (gymnax, envs.known, "<suite>/<name>" of envs.suites), registered by the user with
`register(env_id, factory)`, or import paths "package.module:factory" that a fresh
process (`--resume`, `eval`, `sweep`) can import again. A factory returns an environment
or an (env, params) pair. Environments that are not built in pass `check_env` first.

gymnax (which imports seaborn, scipy and pandas: seconds) is imported only when an id is
looked up among gymnax's: building one of its ids, listing every id (`registered`), or an id
found nowhere else; an import path, a known environment or a suite id never imports it.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
from collections.abc import Callable

import numpy as np

from purejaxvpg.envs import suites
from purejaxvpg.envs.check import check_time_limit
from purejaxvpg.envs.known import KNOWN_ENVS

_USER: dict[str, Callable] = {}  # register(): id -> factory


def _gymnax_ids() -> list[str]:
    """gymnax's registered ids (imports gymnax)."""
    import gymnax

    return gymnax.registered_envs


def _built_in() -> list[str]:
    return [*_gymnax_ids(), *KNOWN_ENVS, *suites.available_ids()]


def is_registered(env_id) -> bool:
    """True for an id `make` accepts by name (as `env_id in registered()`); gymnax is imported
    only for an id that is no user's, known or suite id."""
    if not isinstance(env_id, str):
        return False
    if env_id in _USER or env_id in KNOWN_ENVS:
        return True
    if suites.suite_of(env_id) is not None:
        return env_id in suites.available_ids()
    return env_id in _gymnax_ids()


def registered() -> list[str]:
    """Every environment id `make` accepts by name, sorted: gymnax's registry, envs' own,
    "<suite>/<name>" of every installed suite (envs.suites, found without importing it), and
    the user's (`register`).
    Import-path ids ("package.module:factory") are accepted too but not listed."""
    return sorted({*_built_in(), *_USER})


def register(env_id: str, factory: Callable, overwrite: bool = False) -> None:
    """Make `env_id` build `factory()` (an environment, or an (env, params) pair).

    Registration lives in this process only: for `--resume`, `eval` or `sweep` in a new
    process use an import-path id "package.module:factory" instead.
    """
    if not isinstance(env_id, str) or not env_id or ":" in env_id:
        raise ValueError(f"env_id: must be a non-empty string without ':' (import paths need no "
                         f"registration), got {env_id!r}.")
    if not callable(factory):
        raise ValueError(f"factory: must be callable (returning env or (env, params)), got {factory!r}.")
    if not overwrite and is_registered(env_id):
        raise ValueError(f"env_id: {env_id!r} is already registered; pass overwrite=True to replace it.")
    _USER[env_id] = factory


def is_import_path(env_id) -> bool:
    """True for ids of the form "package.module:factory"."""
    return isinstance(env_id, str) and ":" in env_id


def _load_factory(env_id: str) -> Callable:
    module_name, _, attr = env_id.partition(":")
    if not module_name or not attr or not all(part.isidentifier() for part in module_name.split(".")) \
            or not attr.isidentifier():
        raise ValueError(f"env_id: {env_id!r} is not an import path of the form 'package.module:factory' "
                         "(absolute: no leading dot).")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"env_id: {env_id}: cannot import module {module_name!r} ({type(error).__name__}: {error}); "
            "the module must be importable from this process (installed, or on PYTHONPATH)."
        ) from error
    except Exception as error:  # the user's module fails as it runs: SyntaxError, RuntimeError, ...
        text = str(error).splitlines()[0] if str(error) else ""
        raise ValueError(
            f"env_id: {env_id}: importing module {module_name!r} raised {type(error).__name__}: {text}"
        ) from error
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise ValueError(f"env_id: {env_id}: module {module_name!r} has no callable {attr!r}.")
    return factory


def _call_factory(env_id: str, factory: Callable):
    """(env, params) from a user factory, with errors that name env_id."""
    try:
        made = factory()
    except Exception as error:  # the user's code: any failure is reported, named
        raise ValueError(f"env_id: {env_id}: the factory raised {type(error).__name__}: {error}") from error
    env, params = made if isinstance(made, tuple) and len(made) == 2 else (made, None)
    if not all(callable(getattr(env, name, None)) for name in ("reset", "step")):
        raise ValueError(
            f"env_id: {env_id}: the factory must return an environment (with reset and step) or an "
            f"(env, params) pair, got {type(made).__name__}."
        )
    if params is None:
        params = getattr(env, "default_params", None)
        if params is None:
            raise ValueError(
                f"env_id: {env_id}: the environment has no default_params; return (env, params)."
            )
    return env, params


def _check_type(env_id: str, name: str, default, value, label: str):
    """`value` as the type of the parameter's default, or a ValueError naming the field."""
    kind = np.asarray(default).dtype.kind
    where = f"{_where(label, name)}: {env_id}'s {name}"
    if kind == "b":
        ok = isinstance(value, (bool, np.bool_))
    elif kind in "iu":
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    elif kind == "f":
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok or np.ndim(default) != 0:
        raise ValueError(
            f"{where} is a {type(default).__name__} ({np.asarray(default).dtype}); got {value!r} "
            f"({type(value).__name__})."
        )
    return value


def _where(label: str, name: str) -> str:
    return f"{label}.{name}" if label == "env_params" else label


def apply_params(env_id: str, params, overrides: dict, label: str = "env_params"):
    """`params` with `overrides` replaced, each checked against the field's default type;
    errors start with `label` (Config's env_params names the field too)."""
    if not overrides:
        return params
    if not dataclasses.is_dataclass(params):
        raise ValueError(f"{label}: {env_id}'s parameters are not a dataclass; they cannot be overridden.")
    fields = {f.name for f in dataclasses.fields(params)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"{_where(label, unknown[0])}: {env_id} has no parameter(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(fields))}."
        )
    checked = {k: _check_type(env_id, k, getattr(params, k), v, label) for k, v in overrides.items()}
    params = dataclasses.replace(params, **checked)
    check_time_limit(env_id, params, label)
    return params


def unknown_env_message(env_id: str) -> str:
    """The error text for an id that is not registered, with close matches."""
    suite = suites.suite_of(env_id)
    if suite is not None and env_id[len(suite.prefix):] in suite.names and not suite.available():
        return (f"env_id: {env_id} needs the {suite.extra!r} extra ({suite.package} is not installed): "
                f"pip install 'purejaxvpg[{suite.extra}]'.")
    close = difflib.get_close_matches(env_id, registered(), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return (
        f"env_id: unknown environment {env_id!r}.{hint} "
        f"Registered ids: {', '.join(registered())}."
    )


def check_user_env(env, params) -> None:
    """`envs.check_env` on an environment that is not built in (skipped while envs/check.py
    does not exist)."""
    if importlib.util.find_spec("purejaxvpg.envs.check") is not None:
        from purejaxvpg.envs.check import check_env

        check_env(env, params)


def make(env_id: str, **overrides):
    """See `build`; an error in `overrides` is named "overrides"."""
    return build(env_id, overrides, label="overrides")


def build(env_id: str, overrides: dict | None = None, label: str = "env_params"):
    """Build a registered environment and its parameters.

    ``overrides`` replace fields of the environment's parameter dataclass
    (e.g. ``max_steps_in_episode=200``); a name that is not a field is an error,
    so a typo never silently trains on the default.

    Returns:
        (env, params): a gymnax-style environment and its parameters.
    """
    if is_import_path(env_id) or env_id in _USER:
        factory = _load_factory(env_id) if is_import_path(env_id) else _USER[env_id]
        env, params = _call_factory(env_id, factory)
        params = apply_params(env_id, params, overrides, label)
        check_user_env(env, params)
        return env, params
    if suites.suite_of(env_id) is not None:
        env, params = suites.build(env_id)
    elif env_id in KNOWN_ENVS:
        env = KNOWN_ENVS[env_id]()
        params = env.default_params
    elif env_id in _gymnax_ids():
        import gymnax

        env, params = gymnax.make(env_id)
    else:
        raise ValueError(unknown_env_message(env_id))
    return env, apply_params(env_id, params, overrides or {}, label)
