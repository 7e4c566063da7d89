"""The index's files: the training CSR, the holdout, every movie each user rated, users, movies.

Besides the train CSR and the holdout, `seen.npz` lists every movie each user rated at any
value (held out or below min_rating too), so the export never recommends a movie the
customer has already rated.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
import polars as pl

from wmf.layout import Index
from wmf.stages.index.rows import Rows, pair_key, with_idx


def below_min_rating(rows: Rows, ratings: pl.LazyFrame, min_rating: int) -> np.ndarray:
    """Sorted pair keys of the indexed users' ratings below min_rating, on indexed movies."""
    if min_rating <= 1:
        return np.zeros(0, np.int64)
    lf = ratings.filter(pl.col("rating") < min_rating).select(pl.col("user_id", "movie_id").cast(pl.Int32))
    low = with_idx(lf, pl.Series("user_id", rows.user_ids), pl.Series("movie_id", rows.movie_ids)).collect()
    return np.unique(pair_key(low["user_idx"].to_numpy(), low["movie_idx"].to_numpy(), rows.n_movies))


def write_outputs(
    rows: Rows, starts: np.ndarray, held: np.ndarray, below: np.ndarray, titles_path: Path, out: Path
) -> dict[str, int]:
    """train.npz, holdout.parquet, seen.npz (interactions and `below` keys), users and movies."""
    movies = rows.movie_idx()
    n_users, n_movies = len(rows.user_ids), rows.n_movies
    held_n = _count_rows(starts, held)
    row_n = np.diff(starts) - held_n
    indptr = np.concatenate(([0], np.cumsum(row_n))).astype(np.int64)
    held_ptr = np.concatenate(([0], np.cumsum(held_n))).astype(np.int64)
    train_movies, train_ratings, held_users, held_movies, held_ratings = _split_rows(
        starts, indptr, held_ptr, movies, rows.rating, held
    )
    out.mkdir(parents=True, exist_ok=True)
    holdout = pl.DataFrame(
        {"user_idx": held_users, "movie_idx": held_movies, "rating": held_ratings},
        schema={"user_idx": pl.Int32, "movie_idx": pl.Int32, "rating": pl.Int8},
    )
    if len(below):  # union: a duplicated pair may be rated both below and above min_rating
        seen_keys = np.union1d(rows.key, below)
        seen_ptr = np.searchsorted(seen_keys, np.arange(n_users + 1, dtype=np.int64) * n_movies)
        seen_movies = (seen_keys % n_movies).astype(np.int32)
    else:
        seen_ptr, seen_movies = starts.astype(np.int64), movies
    users = pl.DataFrame(
        {
            "user_idx": np.arange(n_users, dtype=np.int32),
            "user_id": rows.user_ids,
            "n_train": row_n.astype(np.int32),
            "n_holdout": held_n.astype(np.int32),
        }
    )
    movies_table = _movies_table(rows.movie_ids, np.bincount(train_movies, minlength=n_movies), titles_path)
    shape = np.array([n_users, n_movies], dtype=np.int64)
    train = {"indptr": indptr, "indices": train_movies, "ratings": train_ratings, "shape": shape}
    writes = (  # ~1 GB in all: the zip CRCs, the compression and the copies release the GIL
        lambda: np.savez(out / Index.TRAIN, **train),
        lambda: np.savez(out / Index.SEEN, indptr=seen_ptr, indices=seen_movies),
        lambda: holdout.write_parquet(out / Index.HOLDOUT, compression="zstd"),
        lambda: users.write_parquet(out / Index.USERS, compression="zstd"),
        lambda: movies_table.write_parquet(out / Index.MOVIES, compression="zstd"),
    )
    with ThreadPoolExecutor(len(writes)) as pool:
        for future in [pool.submit(write) for write in writes]:
            future.result()
    return {
        "n_users": n_users,
        "n_movies": n_movies,
        "n_train": int(indptr[-1]),
        "n_holdout": holdout.height,
        "n_seen": len(seen_movies),
    }


@numba.njit(cache=True, parallel=True)
def _count_rows(starts, mask):
    """Per user, the rows of `mask` that are set."""
    n = np.zeros(len(starts) - 1, np.int64)
    for u in numba.prange(len(starts) - 1):
        for p in range(starts[u], starts[u + 1]):
            n[u] += mask[p]
    return n


@numba.njit(cache=True, parallel=True)
def _split_rows(starts, train_ptr, held_ptr, movies, ratings, held):
    """One pass: the training CSR's movies and ratings, and the held-out (user, movie, rating)."""
    train_movies = np.empty(train_ptr[-1], np.int32)
    train_ratings = np.empty(train_ptr[-1], np.int8)
    held_users = np.empty(held_ptr[-1], np.int32)
    held_movies = np.empty(held_ptr[-1], np.int32)
    held_ratings = np.empty(held_ptr[-1], np.int8)
    for u in numba.prange(len(starts) - 1):
        t, h = train_ptr[u], held_ptr[u]
        for p in range(starts[u], starts[u + 1]):
            if held[p]:
                held_users[h], held_movies[h], held_ratings[h] = u, movies[p], ratings[p]
                h += 1
            else:
                train_movies[t], train_ratings[t] = movies[p], ratings[p]
                t += 1
    return train_movies, train_ratings, held_users, held_movies, held_ratings


def _movies_table(movie_ids: np.ndarray, n_train: np.ndarray, titles_path: Path) -> pl.DataFrame:
    """Indexed movies with their titles; a movie missing from the titles gets null title/year."""
    movies = pl.DataFrame(
        {
            "movie_idx": np.arange(len(movie_ids), dtype=np.int32),
            "movie_id": movie_ids,
            "n_train": n_train.astype(np.int32),
        }
    )
    if titles_path.is_file():
        titles = pl.read_parquet(titles_path, columns=["movie_id", "title", "year"])
    else:
        titles = pl.DataFrame(schema={"movie_id": pl.Int32, "title": pl.String, "year": pl.Int16})
    return (
        movies.join(titles.unique("movie_id", keep="first", maintain_order=True), on="movie_id", how="left")
        .select(
            "movie_idx",
            "movie_id",
            pl.col("title").cast(pl.String),
            pl.col("year").cast(pl.Int16),
            "n_train",
        )
        .sort("movie_idx")
    )
