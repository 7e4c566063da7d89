"""Business rules: which movies may be recommended or shown as similar, which pairs never.

`--rules FILE` names a TOML file whose keys name tables, Parquet or CSV with a header, each
path absolute or relative to the TOML file:

    allow   = "catalogue.csv"   # movie_id [, available_from, available_until]: what may be shown
    deny    = "deny.parquet"    # movie_id: never recommended, never shown as similar
    exclude = "dismissed.csv"   # user_id, movie_id: never recommended to that customer

The rules act inside the top-k (`wmf.evaluation.topk`, over the allowed movies only): every
customer still gets `--top-k` rows where that many allowed movies they have not rated exist,
in the order the unfiltered ranking gives them. Availability windows are inclusive dates,
evaluated at the run's day: the index's `--until`, else today (UTC).

This module is light (planning reads it: the tables' digests are in the export's key);
`rule_tables` reads the tables (polars) and checks every row.
"""

from __future__ import annotations

import datetime
import tomllib
from pathlib import Path
from typing import Any

from wmf.errors import BadInputError, MissingInputError
from wmf.fingerprints import digest

COLUMNS: dict[str, dict[str, bool]] = {  # each table's columns: required or not
    "allow": {"movie_id": True, "available_from": False, "available_until": False},
    "deny": {"movie_id": True},
    "exclude": {"user_id": True, "movie_id": True},
}


class RulesError(BadInputError):
    """A rule file that cannot be read, or a row of a rule table that is wrong."""


def files(path: str | Path) -> dict[str, Path]:
    """The rules file and the tables it names, by kind ("rules", "allow", "deny", "exclude")."""
    path = Path(path).absolute()
    try:
        with path.open("rb") as f:
            named = tomllib.load(f)
    except OSError as exc:
        raise MissingInputError(f"rules file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(path, 1, "", f"not valid TOML ({exc})") from None
    out = {"rules": path}
    lines = path.read_text().splitlines()
    for kind, table in named.items():
        line = next((n for n, text in enumerate(lines, 1) if text.strip().startswith(kind)), 1)
        if kind not in COLUMNS:
            raise RulesError(path, line, lines[line - 1], f"unknown key; expected {', '.join(COLUMNS)}")
        if not isinstance(table, str):
            raise RulesError(path, line, lines[line - 1], "expected the path of a table, as a string")
        out[kind] = (path.parent / table).absolute()
        if out[kind].suffix not in (".parquet", ".csv"):
            raise RulesError(path, line, lines[line - 1], "expected a .parquet or .csv table")
        if not out[kind].is_file():
            raise MissingInputError(f"rules file {path}: the {kind} table {out[kind]} does not exist")
    return out


def day(until: str) -> str:
    """The day availability windows are evaluated at: the index's `until`, else today (UTC)."""
    return until or datetime.datetime.now(datetime.UTC).date().isoformat()


def inputs(path: str, until: str) -> dict[str, Any]:
    """What the rules add to the export's key: each file's digest, and the day windows apply."""
    if not path:
        return {}
    named = files(path)
    return {"files": {kind: digest(p) for kind, p in named.items()}, "day": day(until)}
