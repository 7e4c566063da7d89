"""Options in a TOML file, grouped by stage (`[index]`, `[train]`, ...), `[tune]` and `[run]`.

A file holds only the options it changes, so `load` returns them sparse: the
command line and the pipeline layer them over the defaults (`merge`). It is
checked against the config dataclasses, so a typo fails at once, naming the
file and the key, instead of silently training with a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from wmf.config import RunConfig, sections
from wmf.errors import WmfError

Config = dict[str, dict[str, Any]]

SECTIONS: dict[str, type] = {**sections(), "run": RunConfig}


class ConfigFileError(WmfError):
    """A config file that is unreadable, not TOML, or names an option or value that does not exist."""


def load(path: Path | str) -> Config:
    """The options a TOML file sets, by section; ints given for float options become floats."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read the config file: {exc.strerror}") from None
    return _checked(data, str(path))


def dumps(config: Config) -> str:
    """TOML text, one table per section, that `load` reads back as `config`."""
    return tomli_w.dumps(_checked(config, "config to write"))


def merge(*configs: Config) -> Config:
    """Section by section, each config's options over those of the configs before it."""
    merged: Config = {}
    for config in configs:
        for section, options in config.items():
            merged.setdefault(section, {}).update(options)
    return merged


def _checked(data: dict[str, Any], source: str) -> Config:
    """`data` with every section, key and value checked against the config dataclasses."""
    checked: Config = {}
    for section, options in data.items():
        if section not in SECTIONS:
            raise ConfigFileError(f"{source}: {_unknown('section', section, SECTIONS)}")
        if not isinstance(options, dict):
            raise ConfigFileError(f"{source}: {section} must be a table ([{section}]), not a value")
        fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
        checked[section] = {}
        for key, value in options.items():
            if key not in fields:
                raise ConfigFileError(f"{source}: [{section}] {_unknown('key', key, fields)}")
            try:
                checked[section][key] = _value(fields[key], value)
            except ValueError as exc:
                raise ConfigFileError(f"{source}: [{section}] {key} = {value!r}: {exc}") from None
    return checked


def _value(f: dataclasses.Field[Any], value: Any) -> Any:
    """The value as the field's type (bool is not taken for int), within its choices."""
    expected = type(f.default)
    if expected is float and type(value) is int:
        value = float(value)
    if type(value) is not expected:
        raise ValueError(f"expected {expected.__name__}, got {type(value).__name__}")
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}")
    return value


def _unknown(kind: str, name: str, known: dict[str, Any]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(known)}"
    return f"unknown {kind} {name!r}; {hint}"
