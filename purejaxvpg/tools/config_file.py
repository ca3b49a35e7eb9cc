"""Config files: what `--config` reads and what `purejaxvpg config` writes.

`--config` takes a TOML file of Config fields, a run's `config.json` (its "config" object), or
the run directory holding it, so `purejaxvpg train --config runs/X/config.json --seed 7` is
that run again with another seed. `to_toml` writes a Config as TOML that `--config` reads back
to an equal Config (tests/test_config_file.py, every preset).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from purejaxvpg.config import Config


def read(path: Path) -> dict:
    """Config fields (plain values, for Config.from_dict) from a TOML file, a run's
    config.json, a JSON object of fields, or a run directory; ValueError naming the file."""
    path = Path(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"config: {path} is a directory without config.json (not a purejaxvpg run directory)")
        path = path / "config.json"
    if path.suffix.lower() == ".json":
        return _read_json(path)
    return read_toml(path)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ValueError(f"config: no such file {path}") from error
    except OSError as error:
        raise ValueError(f"config: cannot read {path}: {error.strerror or error}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"config: {path} is not valid JSON: {error}") from error
    if isinstance(value, dict) and isinstance(value.get("config"), dict):  # a run's config.json
        return value["config"]
    if not isinstance(value, dict):
        raise ValueError(f"config: {path} holds a JSON {type(value).__name__}, not an object of Config fields")
    return value


def read_toml(path: Path) -> dict:
    """Config fields from a TOML file: top-level keys named like the Config fields."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as error:
        raise ValueError(f"config: no such file {path}") from error
    except OSError as error:  # a directory, no permission
        raise ValueError(f"config: cannot read {path}: {error.strerror or error}") from error
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config: {path} is not valid TOML: {error}") from error


def to_toml(config: Config, header: str = "") -> str:
    """Every field of `config` as TOML, in the dataclass's order; `env_params` as a table at
    the end (TOML puts tables after plain keys); `max_grad_norm = "none"` for None, as the
    flag spells it. `header`: comment lines put first."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for field in dataclasses.fields(config):
        if field.name == "env_params":
            continue
        value = getattr(config, field.name)
        if value is None and field.name == "max_grad_norm":
            value = "none"
        lines.append(f"{field.name} = {_toml_value(value, field.name)}")
    if config.env_params:
        lines += ["", "[env_params]"] + [f"{_toml_key(k)} = {_toml_value(v, k)}" for k, v in config.env_params]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if bare else json.dumps(key)


def _toml_value(value, name: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v, name) for v in value) + "]"
    raise ValueError(f"config: {name} = {value!r} has no TOML form")
