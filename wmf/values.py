"""The values options take: the parsers of those given as text (a date, a metric, a list), the
checks of the others' ranges, and `Checked`, which every config dataclass runs on construction:
from the command line, a config file or flow parameters alike, a value that cannot be meant is
a `ConfigError` naming the option as typed (`--until`), the value and what is expected.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Callable, Iterable
from typing import Any

from wmf.errors import ConfigError

# The ranking metrics every evaluation computes (wmf.evaluation.metrics), at each of these
# cut-offs and at `--eval-k`: a metric option names one as NAME@K.
RANKING_METRICS = ("recall", "ndcg", "map", "precision")
EVALUATED_KS = (10, 20, 50, 100)
# The optimizers of `wmf compare` (wmf.stages.compare gives each its train options).
OPTIMIZERS = ("adam", "adamw", "adagrad", "sgd", "sgd-momentum", "adam-sigmoid", "als")
GRADIENT_SOLVERS = ("adam", "adamw", "adagrad", "sgd")

# What a valid value is, when the given one is not (None: it is valid).
Check = Callable[[Any], str | None]


def flag(name: str) -> str:
    """A field's option as typed on the command line: `until` -> `--until`."""
    return "--" + name.replace("_", "-")


def flags(names: Iterable[str]) -> str:
    """`--a, --b and --c`."""
    return listing(flag(name) for name in names)


def listing(texts: Iterable[str]) -> str:
    """`a, b and c`."""
    items = list(texts)
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def setting(name: str, value: Any) -> str:
    """An option set to a value as typed: `--eval-every 1`, `--refit`, `--no-refit`."""
    if isinstance(value, bool):
        return flag(name if value else f"no_{name}")
    return f"{flag(name)} {value}"


# -- parsers of the options whose values are texts; a ValueError says what is expected --------


def parse_date(text: str) -> datetime.date:
    """A real day written YYYY-MM-DD (`--until`)."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError("a date as YYYY-MM-DD")
    try:
        return datetime.date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"a real date as YYYY-MM-DD ({exc})") from None


def parse_metric(text: str) -> tuple[str, int]:
    """`ndcg@100` -> ("ndcg", 100): a ranking metric and its cut-off."""
    name, at, k = text.partition("@")
    if name not in RANKING_METRICS or not at or not k.isdigit() or int(k) < 1:
        raise ValueError(f"NAME@K with NAME one of {', '.join(RANKING_METRICS)} (e.g. ndcg@100, recall@20)")
    return name, int(k)


def parse_factor_choices(text: str) -> list[int]:
    """`32,64,128` -> [32, 64, 128]."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise ValueError("a comma-separated list of positive whole numbers (e.g. 32,64,128)")
    return [int(p) for p in parts]


def parse_optimizers(text: str) -> list[str]:
    """`adam,als` -> ["adam", "als"], each one of OPTIMIZERS."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in OPTIMIZERS]
    if unknown or not names:
        given = f"unknown optimizer {', '.join(unknown)}" if unknown else "none given"
        raise ValueError(f"a comma-separated list of {', '.join(OPTIMIZERS)} ({given})")
    return names


def parse_learning_rates(text: str) -> dict[str, float]:
    """`adam=0.05,sgd=1e6` -> {"adam": 0.05, "sgd": 1e6}: positive rates of gradient optimizers."""
    gradient = [name for name in OPTIMIZERS if name != "als"]
    rates = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = 0.0
        if name not in gradient or not rate > 0:
            raise ValueError(f"comma-separated NAME=RATE, a positive rate of each of {', '.join(gradient)}")
        rates[name] = rate
    return rates


# -- checks of a field's value ---------------------------------------------------------------


def toml_file(v: str) -> str | None:
    return None if not v or v.endswith(".toml") else "the path of a .toml file, or empty"


def count(low: int) -> Check:
    return lambda v: None if v >= low else f"a whole number >= {low}"


def at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"a number >= {low:g}"


def positive(v: float) -> str | None:
    return None if v > 0 else "a number > 0"


def fraction(v: float) -> str | None:
    return None if 0 < v < 1 else "a fraction in (0, 1)"


def share(v: float) -> str | None:
    return None if 0 <= v <= 1 else "a share in [0, 1]"


def stars(v: int) -> str | None:
    return None if 1 <= v <= 5 else "a rating from 1 to 5"


def momentum_value(v: float) -> str | None:
    return None if 0 <= v < 1 else "a momentum in [0, 1)"


def parsed(parse: Callable[[str], Any], empty: str | None = None) -> Check:
    """A text `parse` accepts (or the empty text, when `empty` says what it means)."""

    def check(text: str) -> str | None:
        if empty is not None and not text:
            return None
        try:
            parse(text)
        except ValueError as exc:
            return f"{exc}, or empty ({empty})" if empty is not None else str(exc)
        return None

    return check


def problem(f: dataclasses.Field[Any], value: Any) -> str | None:
    """What a value of field `f` must be, when `value` is not one: its type (an int will do for a
    float, a bool not for an int), one of its choices, its range or form."""
    expected = type(f.default)
    if type(value) is not expected and not (expected is float and type(value) is int):
        return f"{expected.__name__}, got {type(value).__name__}"
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        return f"one of {', '.join(choices)}"
    check = f.metadata.get("check")
    return check(value) if check else None


def refuse(name: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"{flag(name)} {value!r}: expected {expected}")


class Checked:
    """Checks every field on construction, from the command line, a config file or flow parameters
    alike (`together`: the checks of several fields)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if (expected := problem(f, value)) is not None:
                raise refuse(f.name, value, expected)
        self.together()

    def together(self) -> None:
        pass
