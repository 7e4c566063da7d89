"""Interactions as sorted arrays: read with contiguous ids, duplicates collapsed, k-core filtered.

Ids become indexes through a lookup table (`wmf.data.ids.dense`), so user_idx and
movie_idx follow ascending user_id and movie_id; the rows are sorted once by
(user_idx, movie_idx) with a radix sort (`sort`), and filtering only drops rows, so the
order stays CSR-ready.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import polars as pl

from wmf.data.ids import dense
from wmf.stages.index.sort import bucket_shift, gather, stable_order, user_major


@dataclass
class Rows:
    """Interactions as parallel numpy arrays sorted by key = user_idx * n_movies + movie_idx."""

    key: np.ndarray  # int64, strictly increasing after collapse_duplicates
    rating: np.ndarray  # int8
    date: np.ndarray | None  # int32 days since 1970 (temporal holdout only)
    user_ids: np.ndarray  # int32 user_id of each user_idx
    movie_ids: np.ndarray  # int32 movie_id of each movie_idx

    @property
    def n_movies(self) -> int:
        return len(self.movie_ids)

    def row_starts(self) -> np.ndarray:
        """indptr of all interactions: user u's rows are row_starts[u]:row_starts[u + 1]."""
        first_keys = np.arange(len(self.user_ids) + 1, dtype=np.int64) * self.n_movies
        return np.searchsorted(self.key, first_keys)

    def user_idx(self) -> np.ndarray:
        n_users = len(self.user_ids)
        return np.repeat(np.arange(n_users, dtype=np.int32), np.diff(self.row_starts()))

    def movie_idx(self) -> np.ndarray:
        return movie_of(self.key, self.n_movies)

    def collapse_duplicates(self) -> int:
        """Merge repeated (user, movie) pairs: latest date, highest rating. Returns rows dropped."""
        same = self.key[1:] == self.key[:-1]
        n_dup = int(np.count_nonzero(same))
        if n_dup:
            starts = np.flatnonzero(np.concatenate(([True], ~same)))
            self.key = self.key[starts]
            self.rating = np.maximum.reduceat(self.rating, starts)
            if self.date is not None:
                self.date = np.maximum.reduceat(self.date, starts)
        return n_dup

    def filter_min_counts(self, min_user: int, min_movie: int) -> int:
        """Drop users/movies below the minimums until all kept ones meet them; returns rounds."""
        rounds = 0
        while min_user > 1 or min_movie > 1:
            users, movies = self.user_idx(), self.movie_idx()
            user_n = np.bincount(users, minlength=len(self.user_ids))
            movie_n = np.bincount(movies, minlength=self.n_movies)
            keep = (user_n >= min_user)[users] & (movie_n >= min_movie)[movies]
            if keep.all():
                break
            rounds += 1
            self._keep(keep, users[keep], movies[keep])
        return rounds

    def _keep(self, keep: np.ndarray, users: np.ndarray, movies: np.ndarray) -> None:
        """Keep the masked rows and re-rank ids densely (monotone, so the order stays sorted)."""
        user_alive = np.bincount(users, minlength=len(self.user_ids)) > 0
        movie_alive = np.bincount(movies, minlength=self.n_movies) > 0
        new_user = np.cumsum(user_alive, dtype=np.int64) - 1
        new_movie = np.cumsum(movie_alive, dtype=np.int64) - 1
        self.user_ids = self.user_ids[user_alive]
        self.movie_ids = self.movie_ids[movie_alive]
        self.key = pair_key(new_user[users], new_movie[movies], self.n_movies)
        self.rating = self.rating[keep]
        if self.date is not None:
            self.date = self.date[keep]


def read_interactions(ratings: pl.LazyFrame, path: Path, min_rating: int, with_date: bool) -> Rows:
    """Read ratings >= min_rating with dense ids, sorted by (user_idx, movie_idx)."""
    columns = [pl.col("user_id", "movie_id", "rating")]
    if with_date:
        columns.append(pl.col("date").cast(pl.Int32))
    df = ratings.filter(pl.col("rating") >= min_rating).select(columns).collect()
    users = df.get_column("user_id").cast(pl.Int32).to_numpy()
    movies = df.get_column("movie_id").cast(pl.Int32).to_numpy()
    user_ids, user_pos = dense(users, path, "user_id")
    movie_ids, movie_pos = dense(movies, path, "movie_id")
    rating = df.get_column("rating").to_numpy()
    date = df.get_column("date").to_numpy() if with_date else np.zeros(0, np.int32)
    n_chunks = max(1, min(numba.get_num_threads(), len(users) // 1_000_000))
    if np.any(movies[1:] < movies[:-1]):
        first, _ = stable_order(gather(movie_pos, movies), len(movie_ids), np.empty(0, np.int64), n_chunks)
    else:  # the ingest writes the ratings movie by movie, as the raw files hold them
        first = np.empty(0, np.int64)
    del df  # its columns were copied out: keep the peak down
    n_users, n_movies = len(user_ids), len(movie_ids)
    shift = bucket_shift(n_users)
    key, rating, date = user_major(
        users, movies, rating, date, user_pos, movie_pos, n_users, n_movies, first, n_chunks, shift
    )
    return Rows(key, rating, date if with_date else None, user_ids, movie_ids)


@numba.njit(cache=True, parallel=True)
def movie_of(key, n_movies):
    out = np.empty(len(key), np.int32)
    for i in numba.prange(len(key)):
        out[i] = key[i] % n_movies
    return out


def pair_key(users: np.ndarray, movies: np.ndarray, n_movies: int) -> np.ndarray:
    return users.astype(np.int64) * n_movies + movies


def with_idx(lf: pl.LazyFrame, user_ids: pl.Series, movie_ids: pl.Series) -> pl.LazyFrame:
    """Replace user_id/movie_id by their dense indexes; unknown ids drop out."""
    return (
        lf.join(_ranked(user_ids, "user_idx"), on="user_id")
        .join(_ranked(movie_ids, "movie_idx"), on="movie_id")
        .drop("user_id", "movie_id")
    )


def _ranked(ids: pl.Series, idx_name: str) -> pl.LazyFrame:
    """ids (sorted, unique) with their position: the dense index."""
    return ids.to_frame().with_row_index(idx_name).lazy()
