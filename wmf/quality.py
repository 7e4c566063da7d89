"""Data quality of an ingest: quality.json, and the findings a night should warn about.

Per raw ratings file: lines, ratings, rejected lines and date range; over all ratings:
the count per rating value, duplicate (movie, customer) pairs, movies rated but missing
from the titles, and dates after today or before 1998 (the Prize's data starts in 1999).
Duplicates are kept in the ingest's ratings table as they came; the index stage
collapses each pair to one interaction (the latest date, then the highest rating).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import numba
import numpy as np
import polars as pl

EARLIEST = datetime.date(1998, 1, 1)


def check(ratings: Path, movies: Path, files: list[dict[str, Any]], today: datetime.date) -> dict[str, Any]:
    """quality.json's content; `files` are the ingest's per-file counts, in file order."""
    lf = pl.scan_parquet(ratings)
    rating_files = [f for f in files if f["kind"] == "ratings"]
    starts = np.r_[0, np.cumsum([f["records"] for f in rating_files])]
    date = pl.col("date")
    queries = [
        lf.slice(int(start), f["records"]).select(date.min().alias("first"), date.max().alias("last"))
        for start, f in zip(starts, rating_files, strict=False)
    ]
    queries += [
        lf.group_by("rating").len().sort("rating"),
        lf.select(
            (date > today).sum().alias("after_today"),
            (date < EARLIEST).sum().alias("before_1998"),
        ),
        lf.select(pl.col("movie_id").unique()).join(
            pl.scan_parquet(movies).select("movie_id"), on="movie_id", how="anti"
        ),
    ]
    *ranges, per_value, dates, untitled = pl.collect_all(queries)
    pairs = pl.read_parquet(ratings, columns=["movie_id", "user_id"])
    duplicates = int(_duplicates(pairs["movie_id"].to_numpy(), pairs["user_id"].to_numpy()))
    report = {
        "files": [
            {
                "name": f["name"],
                "lines": f["lines"],
                "ratings": f["records"],
                "rejected": f["rejected"],
                "first_date": _iso(r["first"][0]),
                "last_date": _iso(r["last"][0]),
            }
            for f, r in zip(rating_files, ranges, strict=True)
        ],
        "ratings_per_value": {str(k): v for k, v in per_value.iter_rows()},
        "duplicate_pairs": duplicates,
        "duplicates_kept": "every row here; the index keeps one per pair: latest date, then highest rating",
        "movies_without_title": sorted(untitled["movie_id"].to_list()),
        "dates_after_today": int(dates["after_today"][0]),
        "dates_before_1998": int(dates["before_1998"][0]),
        "today": today.isoformat(),
    }
    report["findings"] = findings(report)
    return report


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


def _iso(value: datetime.date | None) -> str | None:
    return None if value is None else value.isoformat()


@numba.njit(cache=True)
def _duplicates(movies, users):
    """Rows repeating the (movie, user) pair of an earlier row: O(n), a user bitmap per movie."""
    if len(movies) == 0:
        return 0
    n_movies = movies.max() + 1
    start = np.zeros(n_movies + 1, np.int64)
    for m in movies:
        start[m + 1] += 1
    start = np.cumsum(start)
    fill = start[:-1].copy()
    grouped = np.empty(len(users), users.dtype)  # users, grouped by movie
    for k in range(len(movies)):
        grouped[fill[movies[k]]] = users[k]
        fill[movies[k]] += 1
    seen = np.zeros(users.max() + 1, np.bool_)
    repeats = 0
    for m in range(n_movies):
        for k in range(start[m], start[m + 1]):
            repeats += seen[grouped[k]]
            seen[grouped[k]] = True
        for k in range(start[m], start[m + 1]):
            seen[grouped[k]] = False
    return repeats
