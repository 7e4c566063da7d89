"""Data quality of an ingest: quality.json, and the findings a night should warn about.

Per raw ratings file: lines, ratings, rejected lines and date range; over all ratings:
the count per rating value, duplicate (movie, customer) pairs, movies rated but missing
from the titles, and dates after today or before 1998 (the Prize's data starts in 1999).
Duplicates are kept in the ingest's ratings table as they came; the index stage
collapses each pair to one interaction (the latest date, then the highest rating).
"""

from __future__ import annotations

import datetime
from typing import Any

import numba
import numpy as np
import polars as pl

EARLIEST = datetime.date(1998, 1, 1)


def check(
    ratings: pl.DataFrame, titled: pl.Series, files: list[dict[str, Any]], today: datetime.date
) -> dict[str, Any]:
    """quality.json's content; `ratings` in file order, `titled` the titles' movie ids, `files`
    the ingest's per-file counts."""
    rating_files = [f for f in files if f["kind"] == "ratings"]
    starts = np.r_[0, np.cumsum([f["records"] for f in rating_files])]
    dates = ratings["date"]
    ranges = [dates.slice(int(start), f["records"]) for start, f in zip(starts, rating_files, strict=False)]
    per_value = ratings["rating"].value_counts().sort("rating")
    movies = ratings["movie_id"].to_numpy()
    duplicates = int(_duplicates(movies, ratings["user_id"].to_numpy()))
    rated = pl.Series("movie_id", np.flatnonzero(np.bincount(movies)), dtype=pl.Int32)
    report = {
        "files": [
            {
                "name": f["name"],
                "lines": f["lines"],
                "ratings": f["records"],
                "rejected": f["rejected"],
                "first_date": _iso(r.min()),
                "last_date": _iso(r.max()),
            }
            for f, r in zip(rating_files, ranges, strict=True)
        ],
        "ratings_per_value": {str(k): v for k, v in per_value.iter_rows()},
        "duplicate_pairs": duplicates,
        "duplicates_kept": "every row here; the index keeps one per pair: latest date, then highest rating",
        "movies_without_title": rated.filter(~rated.is_in(titled.implode())).to_list(),
        "dates_after_today": int((dates > today).sum()),
        "dates_before_1998": int((dates < EARLIEST).sum()),
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
