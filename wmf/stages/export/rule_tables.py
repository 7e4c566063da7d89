"""The business rules' tables (`rules`), read and checked row by row, over the index's users and
movies: which movies are allowed, which customer-movie pairs are excluded."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wmf.stages.export.rules import COLUMNS, RulesError, files


@dataclass
class Rules:
    """The rules over the index's movie and user indices."""

    allowed: np.ndarray  # bool per movie: may be recommended and shown as similar
    excluded: tuple[np.ndarray, np.ndarray]  # user-major CSR (int64 indptr, int32 movie indices)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def load(path: str, when: str, movie_ids: np.ndarray, user_ids: np.ndarray) -> Rules:
    """Read and check the rule tables; ids absent from the data are counted and warned of."""
    named = files(path)
    n_movies, n_users = len(movie_ids), len(user_ids)
    allowed = np.ones(n_movies, dtype=bool)
    rules = Rules(allowed, (np.zeros(n_users + 1, dtype=np.int64), np.zeros(0, dtype=np.int32)))
    if "allow" in named:
        table = _read(named["allow"], "allow")
        movies = _indices(table, "movie_id", movie_ids, named["allow"], rules)
        today = datetime.date.fromisoformat(when)
        open_ = np.ones(len(movies), dtype=bool)
        if "available_from" in table.columns:
            open_ &= _dates(table, "available_from", named["allow"], lambda d: d <= today)
        if "available_until" in table.columns:
            open_ &= _dates(table, "available_until", named["allow"], lambda d: d >= today)
        allowed[:] = False
        allowed[movies[(movies >= 0) & open_]] = True
        rules.counts["in_catalogue"] = len(np.unique(movies[movies >= 0]))
        rules.counts["available"] = int(allowed.sum())
    if "deny" in named:
        denied = _indices(_read(named["deny"], "deny"), "movie_id", movie_ids, named["deny"], rules)
        denied = np.unique(denied[denied >= 0])
        rules.counts["denied"] = len(denied)
        allowed[denied] = False
    if "exclude" in named:
        table = _read(named["exclude"], "exclude")
        users = _indices(table, "user_id", user_ids, named["exclude"], rules)
        movies = _indices(table, "movie_id", movie_ids, named["exclude"], rules)
        known = (users >= 0) & (movies >= 0)
        rules.excluded = _csr(users[known], movies[known], n_users)
        rules.counts["excluded_pairs"] = int(known.sum())
    rules.counts["allowed"] = int(allowed.sum())
    return rules


def union(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Row by row, the items of two CSRs over the same rows (each indptr starting at 0)."""
    (pa, ia), (pb, ib) = a, b
    ca, cb = np.diff(pa), np.diff(pb)
    ptr = np.zeros(len(ca) + 1, dtype=np.int64)
    np.cumsum(ca + cb, out=ptr[1:])
    out = np.empty(ptr[-1], dtype=np.int32)
    rows = np.repeat(np.arange(len(ca)), ca)
    out[ptr[rows] + np.arange(len(ia)) - pa[rows]] = ia
    rows = np.repeat(np.arange(len(cb)), cb)
    out[ptr[rows] + ca[rows] + np.arange(len(ib)) - pb[rows]] = ib
    return ptr, out


def _read(path: Path, kind: str) -> Any:
    """A rule table, its columns checked against `COLUMNS` (names; the values by the caller)."""
    import polars as pl

    try:
        # A CSV's columns all as text, checked row by row
        table = pl.read_csv(path, infer_schema=False) if path.suffix == ".csv" else pl.read_parquet(path)
    except Exception as exc:  # polars' own errors: unreadable, not a table of this format
        raise RulesError(path, 1, "", f"cannot read the {kind} table ({exc})") from None
    known = COLUMNS[kind]
    for column in table.columns:
        if column not in known:
            raise RulesError(
                path, 1, ",".join(table.columns), f"unknown column {column!r}; expected {', '.join(known)}"
            )
    for column, required in known.items():
        if required and column not in table.columns:
            raise RulesError(path, 1, ",".join(table.columns), f"no {column} column")
    return table


def _where(path: Path, row: int) -> int:
    """The line of a CSV row (its header is line 1), or the row number (from 1) of a Parquet one."""
    return row + 2 if path.suffix == ".csv" else row + 1


def _indices(table: Any, column: str, ids: np.ndarray, path: Path, rules: Rules) -> np.ndarray:
    """Each row's position in `ids` (the index's ids, in index order), -1 where the data has no
    such id: a warning, not an error (a rule may name a movie the data does not hold yet)."""
    import polars as pl

    values = table[column]
    values = (
        values.cast(pl.Int64, strict=False)
        if values.dtype in (pl.String, pl.Int64, pl.Int32, pl.Int16, pl.UInt32)
        else None
    )
    bad = pl.Series([True] * table.height) if values is None else values.is_null() | (values < 0)
    if bad.any():
        row = int(bad.arg_true()[0])
        raise RulesError(path, _where(path, row), str(table.row(row)), f"{column} is not a whole number >= 0")
    wanted = values.to_numpy().astype(np.int64)
    order = np.argsort(ids, kind="stable")
    at = np.minimum(np.searchsorted(ids[order], wanted), len(ids) - 1)
    hit = ids[order][at] == wanted
    if not hit.all():
        example = int(wanted[~hit][0])
        rules.warnings.append(
            f"{path}: {int((~hit).sum()):,} rows name a {column} not in the data (e.g. {example})"
        )
    return np.where(hit, order[at], -1)


def _dates(table: Any, column: str, path: Path, keep: Any) -> np.ndarray:
    """Whether each row's date passes `keep`; an empty cell passes (an open window)."""
    out = np.ones(table.height, dtype=bool)
    for row, value in enumerate(table[column].to_list()):
        if value is None or value == "":
            continue
        try:
            date = value if isinstance(value, datetime.date) else datetime.date.fromisoformat(str(value))
        except ValueError:
            raise RulesError(
                path, _where(path, row), str(table.row(row)), f"{column} is not a date as YYYY-MM-DD"
            ) from None
        out[row] = keep(date)
    return out


def _csr(rows: np.ndarray, cols: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((cols, rows))
    ptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=ptr[1:])
    return ptr, cols[order].astype(np.int32)
