"""Command-line flags to values: the parsers of argparse types shared by every command, every Config
field as a flag (`add_config_flags`) and the Config a command line asks for
(`config_from_args`: flags over a TOML file over a preset over the defaults).

Below both cli.py (the parser and the commands) and train_command.py, which read flags
through it.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

from purejaxvpg.config import Config
from purejaxvpg.presets import PRESETS
from purejaxvpg.tools import config_file


def _parse_optional_float(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def _parse_int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from error


def parse_devices(text: str) -> str | int:
    """`--devices`: "all" or a number of devices >= 1 (checked against the devices there
    are by `checked_devices`, once jax is up: after `--distributed` has started it)."""
    text = text.strip().lower()
    if text == "all":
        return "all"
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected 'all' or a number of devices >= 1, got {text!r}")
    return count


def checked_devices(value: str | int | None) -> str | int:
    """`--devices` (None: "all") checked against the devices this run sees: a ValueError
    naming --devices and the allowed range, before anything compiles."""
    from purejaxvpg.host import placement

    value = "all" if value is None else value
    try:
        placement.select(value)
    except ValueError as error:
        raise ValueError(f"--{error}") from None  # "--devices: must be between 1 and N ..."
    return value


def _parse_env_param(text: str) -> tuple[str, object]:
    """"name=value" -> (name, value), the value an int, float, bool or else a string."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    raw = raw.strip()
    if raw.lower() in ("true", "false"):
        return name.strip(), raw.lower() == "true"
    for kind in (int, float):
        try:
            return name.strip(), kind(raw)
        except ValueError:
            pass
    return name.strip(), raw


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(Config)
    group = parser.add_argument_group("configuration (every purejaxvpg.Config field)")
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        hint = hints[field.name]
        doc = f"{field.metadata.get('doc', '')} (default: {field.default})"
        if field.name == "env_params":  # repeatable NAME=VALUE, merged over the TOML table
            group.add_argument(
                "--env-param", "--env-params", dest="env_params", type=_parse_env_param, action="append",
                default=argparse.SUPPRESS, metavar="NAME=VALUE", help=field.metadata.get("doc", ""),
            )
            continue
        if hint is bool:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=doc
            )
            continue
        if hint in (int, float, str):
            kind = hint
        elif hint == tuple[int, ...]:
            kind = _parse_int_tuple
        elif isinstance(hint, types.UnionType) and set(typing.get_args(hint)) == {float, type(None)}:
            kind = _parse_optional_float
        else:  # a new field type must be taught to the parser, not silently dropped
            raise TypeError(f"cli: no flag parser for Config.{field.name}: {hint}")
        group.add_argument(
            flag, type=kind, default=argparse.SUPPRESS, metavar=field.name.upper(), help=doc
        )


def config_from_args(args: argparse.Namespace) -> Config:
    """Config from, by precedence: flags on the command line, the `--config` file (TOML, a
    run's config.json or its run directory: config_file.read), the shipped preset for the
    env id (with `--preset`), the defaults.

    Config flags default to argparse.SUPPRESS, so only flags on the command line are in
    `args` (which lets `--max-grad-norm none` set None).
    """
    values: dict = {}
    if getattr(args, "config", None) is not None:
        values.update(config_file.read(args.config))
    values_toml = values.get("env_params", ())
    values.update(
        {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)}
    )
    if hasattr(args, "env_params"):  # --env-param pairs override the TOML table's entries
        values["env_params"] = tuple({**dict(_pairs(values_toml)), **dict(args.env_params)}.items())
    if getattr(args, "preset", False):
        values = {**PRESETS.get(values.get("env_id", Config.env_id), {}), **values}
    return Config.from_dict(values)


def _pairs(env_params) -> tuple:
    """An [env_params] TOML table (dict) or a tuple of pairs, as pairs."""
    return tuple(env_params.items()) if isinstance(env_params, dict) else tuple(env_params)
