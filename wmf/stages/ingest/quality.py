"""Data quality of an ingest: quality.json, and the findings a night should warn about.

Per raw ratings file: lines, ratings, rejected lines and date range; over all ratings:
the count per rating value, duplicate (movie, customer) pairs, movies rated but missing
from the titles, and dates after today or before 1998 (the Prize's data starts in 1999).
Duplicates are kept in the ingest's ratings table as they came; the index stage
collapses each pair to one interaction (the latest date, then the highest rating).
"""

from __future__ import annotations

import datetime
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numba
import numpy as np
import polars as pl

from wmf.data.ids import present

EARLIEST = datetime.date(1998, 1, 1)
_EPOCH = datetime.date(1970, 1, 1)


class Columns(NamedTuple):
    """One ratings file's records as arrays: what the parser yields, or a slice read back."""

    movie_id: np.ndarray
    user_id: np.ndarray
    rating: np.ndarray
    date: np.ndarray  # days since 1970-01-01


class _Summary(NamedTuple):
    first_day: int
    last_day: int
    per_value: np.ndarray  # count of each rating value, indexed by the value
    after_today: int
    before_earliest: int
    movies: np.ndarray  # the distinct movie ids rated in this file, ascending
    duplicates: int  # within this file


def columns_of(ratings: pl.DataFrame, files: list[dict[str, Any]]) -> list[Columns]:
    """The ratings table read back, cut into one Columns per ratings file (views, no copies)."""
    whole = Columns(*(ratings[c].to_physical().to_numpy() for c in Columns._fields))
    starts = np.cumsum([0] + [f["records"] for f in files if f["kind"] == "ratings"])
    return [Columns(*(a[lo:hi] for a in whole)) for lo, hi in itertools.pairwise(starts)]


def check(
    columns: list[Columns], titled: pl.Series, files: list[dict[str, Any]], today: datetime.date
) -> dict[str, Any]:
    """quality.json's content; `columns` one per ratings file in file order, `titled` the
    titles' movie ids, `files` the ingest's per-file counts.

    Each file is summed up in one pass of its own (files in parallel threads); duplicates
    across files are looked for only when two files rate the same movie.
    """
    rating_files = [f for f in files if f["kind"] == "ratings"]
    limits = ((today - _EPOCH).days, (EARLIEST - _EPOCH).days)
    with ThreadPoolExecutor(max(1, min(len(columns), os.cpu_count() or 1))) as pool:
        summaries = list(pool.map(lambda c: _summarize(c, *limits), columns))
    rated, files_per_movie = np.unique(np.concatenate([s.movies for s in summaries]), return_counts=True)
    if np.any(files_per_movie > 1):
        duplicates = _duplicates(*(np.concatenate([c[i] for c in columns]) for i in (0, 1)))
    else:
        duplicates = sum(s.duplicates for s in summaries)
    per_value = sum(s.per_value for s in summaries)
    rated = pl.Series("movie_id", rated, dtype=pl.Int32)
    report = {
        "files": [
            {
                "name": f["name"],
                "lines": f["lines"],
                "ratings": f["records"],
                "rejected": f["rejected"],
                "first_date": _iso(s.first_day, f["records"]),
                "last_date": _iso(s.last_day, f["records"]),
            }
            for f, s in zip(rating_files, summaries, strict=True)
        ],
        "ratings_per_value": {str(v): int(n) for v, n in enumerate(per_value) if n},
        "duplicate_pairs": int(duplicates),
        "duplicates_kept": "every row here; the index keeps one per pair: latest date, then highest rating",
        "movies_without_title": rated.filter(~rated.is_in(titled.implode())).to_list(),
        "dates_after_today": sum(s.after_today for s in summaries),
        "dates_before_1998": sum(s.before_earliest for s in summaries),
        "today": today.isoformat(),
    }
    report["findings"] = findings(report)
    return report


def _summarize(c: Columns, today: int, earliest: int) -> _Summary:
    first, last, per_value, after, before = _scan(c.rating, c.date, today, earliest)
    duplicates = _duplicates(c.movie_id, c.user_id)
    return _Summary(first, last, per_value, after, before, _rated(c.movie_id), duplicates)


def _rated(movies: np.ndarray) -> np.ndarray:
    """The distinct ids: a bitmap pass for ids below 16 M (every Netflix one), else a sort."""
    top = int(movies.max()) if len(movies) else -1
    if top >= 1 << 24:
        return np.unique(movies)
    return np.flatnonzero(present(movies, top + 1)).astype(movies.dtype)


def findings(report: dict[str, Any]) -> list[str]:
    """One sentence per defect found: what each night logs as a warning."""
    found = []
    for f in report["files"]:
        if f["rejected"]:
            found.append(f"{f['name']}: {f['rejected']:,} rejected lines (see rejects.parquet)")
        if f["ratings"] == 0:
            found.append(f"{f['name']}: no ratings")
    if n := report["duplicate_pairs"]:
        found.append(f"{n:,} ratings repeat an earlier (movie, customer) pair; the index keeps the latest")
    if missing := report["movies_without_title"]:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        found.append(f"{len(missing):,} rated movies are missing from the titles file: {shown}")
    if n := report["dates_after_today"]:
        found.append(f"{n:,} ratings are dated after today ({report['today']})")
    if n := report["dates_before_1998"]:
        found.append(f"{n:,} ratings are dated before 1998")
    return found


def _iso(day: int, records: int) -> str | None:
    return (_EPOCH + datetime.timedelta(days=day)).isoformat() if records else None


@numba.njit(cache=True, nogil=True)
def _scan(ratings, days, today, earliest):  # pragma: no cover - numba
    """Date range, count per rating value (1-5, as the ingest checked), dates out of range."""
    first, last, after, before = np.iinfo(np.int32).max, np.iinfo(np.int32).min, 0, 0
    per_value = np.zeros(6, np.int64)
    for k in range(len(ratings)):
        day = days[k]
        first, last = min(first, day), max(last, day)
        after += day > today
        before += day < earliest
        per_value[ratings[k]] += 1
    return first, last, per_value, after, before


@numba.njit(cache=True, nogil=True)
def _duplicates(movies, users):
    """Rows repeating the (movie, user) pair of an earlier row: O(n), a user bitmap per movie.

    The rows are grouped by movie first, unless they already are (the files' own order)."""
    if len(movies) == 0:
        return 0
    n_movies = movies.max() + 1
    start = np.zeros(n_movies + 1, np.int64)
    for m in movies:
        start[m + 1] += 1
    start = np.cumsum(start)
    grouped = users  # users, grouped by movie
    for k in range(1, len(movies)):
        if movies[k] < movies[k - 1]:
            fill = start[:-1].copy()
            grouped = np.empty(len(users), users.dtype)
            for j in range(len(movies)):
                grouped[fill[movies[j]]] = users[j]
                fill[movies[j]] += 1
            break
    seen = np.zeros(users.max() + 1, np.bool_)
    repeats = 0
    for m in range(n_movies):
        for k in range(start[m], start[m + 1]):
            repeats += seen[grouped[k]]
            seen[grouped[k]] = True
        for k in range(start[m], start[m + 1]):
            seen[grouped[k]] = False
    return repeats
