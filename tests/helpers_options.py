"""A valid value other than the default of every config option, to see an option reach its field."""

from __future__ import annotations

import dataclasses
from typing import Any

# What an option's other value needs of other options to be valid: {option: {option: value}}.
NEEDS: dict[str, dict[str, Any]] = {"sigmoid": {"solver": "adam"}}

# A valid value other than the default, of each option given as text.
OTHER_TEXTS = {
    "until": "2005-01-01",
    "early_stopping_metric": "ndcg@20",
    "metric": "recall@20",
    "factor_choices": "16,32",
    "optimizers": "adam,als",
    "learning_rates": "adam=0.1",
    "rules": "/srv/wmf/rules.toml",  # a path: absolute, so the command line and a file agree
}


def another(f: dataclasses.Field) -> Any:
    """A valid value of the field's type other than its default."""
    if isinstance(f.default, bool):
        return not f.default
    if choices := f.metadata.get("choices"):
        return next(c for c in choices if c != f.default)
    if isinstance(f.default, str):
        return OTHER_TEXTS[f.name]
    if isinstance(f.default, float) and 0 <= f.default < 1:
        return (f.default + 1) / 2  # a fraction, a share or a momentum stays one
    return f.default + 1


def needs(f: dataclasses.Field) -> list[str]:
    """The command-line options `another(f)` needs."""
    return [
        arg for name, value in NEEDS.get(f.name, {}).items() for arg in ("--" + name.replace("_", "-"), value)
    ]
