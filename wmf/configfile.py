"""Options in a TOML file, grouped by stage (`[index]`, `[train]`, ...), `[tune]` and `[run]`.

A file holds only the options it changes, so `load` returns them sparse: the
command line and the pipeline layer them over the defaults (`merge`). It is
checked against the config dataclasses, so a typo, a renamed option or a value
that cannot be meant fails at once, naming the file and the key, instead of
silently training with a default. Every option has one name, unique across the
sections: its key here, its field, and its flag (`until`, `--until`).
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from wmf.config import RunConfig, sections
from wmf.errors import ConfigError
from wmf.values import problem

Config = dict[str, dict[str, Any]]

SECTIONS: dict[str, type] = {**sections(), "run": RunConfig}

# Options renamed so that no two sections share a name, by section: {old key: new key}.
RENAMED: dict[str, dict[str, str]] = {
    "export": {"device": "export_device"},
    "tune": {
        "max_iterations": "trial_iterations",
        "patience": "trial_patience",
        "seed": "tune_seed",
        "factors": "factor_choices",
    },
    "compare": {
        "iterations": "steps",
        "learning_rate": "compare_learning_rate",
        "momentum": "sgd_momentum",
        "eval_every": "compare_eval_every",
        "sweep_iterations": "sweep_steps",
    },
}


class ConfigFileError(ConfigError):
    """A config file that is unreadable, not TOML, or names an option or value that does not exist."""


def owners() -> dict[str, str]:
    """The section of every option, by name; a name two sections share is a bug, refused here."""
    owner: dict[str, str] = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if f.name in owner:
                raise TypeError(
                    f"options must have one name each: {f.name!r} is in [{owner[f.name]}] and [{section}]"
                )
            owner[f.name] = section
    return owner


OWNERS = owners()


def load(path: Path | str) -> Config:
    """The options a TOML file sets, by section; ints given for float options become floats."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read the config file: {exc.strerror}") from None
    checked = _checked(data, str(path))
    for section, options in checked.items():
        for f in dataclasses.fields(SECTIONS[section]):
            if f.metadata.get("path") and options.get(f.name):
                options[f.name] = str((Path(path).parent / options[f.name]).absolute())
    return checked


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
                raise ConfigFileError(f"{source}: [{section}] {_unknown_key(section, key, fields)}")
            if (expected := problem(fields[key], value)) is not None:
                raise ConfigFileError(f"{source}: [{section}] {key} = {value!r}: expected {expected}")
            checked[section][key] = float(value) if type(fields[key].default) is float else value
    return checked


def _unknown_key(section: str, key: str, fields: dict[str, Any]) -> str:
    if new := RENAMED.get(section, {}).get(key):
        return f"{key} is now called {new} (one name per option, in files and on the command line)"
    if key in OWNERS:
        return f"{key} is an option of [{OWNERS[key]}], not of [{section}]"
    return _unknown("key", key, fields)


def _unknown(kind: str, name: str, known: dict[str, Any]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(known)}"
    return f"unknown {kind} {name!r}; {hint}"
