"""Index stage: ratings -> contiguous user/movie indexes, a train CSR and a holdout.

Design (full scale: 100 M ratings in well under a minute on 2 cores):
- ids are dense-ranked by a join to the sorted unique ids, so user_idx/movie_idx
  follow ascending user_id/movie_id;
- interactions are sorted once by (user_idx, movie_idx) with an O(n) radix sort
  (numba); filtering and splitting only drop rows, so the order stays CSR-ready;
- duplicate (user, movie) pairs collapse to one interaction (latest date, highest
  rating), so the result never depends on input row order;
- the user/movie minimums are iterated to a fixed point (a k-core): after
  filtering every kept user and movie really has the minimum, before the split;
- random/temporal holdouts rank each user's interactions by a per-row key
  (a seeded hash, or the date) with one more sort that is nearly sorted already;
- besides the train CSR and the holdout, `seen.npz` lists every movie each user
  rated at any value (held out or below min_rating too), so the export never
  recommends a movie the customer has already rated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
import polars as pl
from tqdm import tqdm

from wmf.config import IndexConfig
from wmf.errors import MissingInputError, WmfError
from wmf.interactions import HOLDOUT, MOVIES, SEEN, TRAIN, USERS

_U64 = np.uint64


def build_index(ingest_dir: Path, out: Path, config: IndexConfig, progress: bool = True) -> dict[str, Any]:
    """Build users/movies tables, train.npz, holdout.parquet and seen.npz from an ingest output."""
    ingest_dir, out = Path(ingest_dir), Path(out)
    _check_config(config)
    ratings_path = ingest_dir / "ratings.parquet"
    if not ratings_path.is_file():
        raise MissingInputError(f"{ratings_path} not found: run the ingest stage first")
    probe_path = ingest_dir / "probe.parquet"
    if config.holdout == "probe" and not probe_path.is_file():
        raise MissingInputError(
            f"holdout='probe' needs {probe_path}, which the ingest stage writes only when "
            "the raw data has probe.txt: add probe.txt or choose another holdout"
        )

    bar = tqdm(total=4, desc="index", unit="step", disable=not progress)
    bar.set_postfix_str("read")
    n_ratings_in = pl.scan_parquet(ratings_path).select(pl.len()).collect().item()
    rows = _read_interactions(ratings_path, config.min_rating, config.holdout == "temporal")
    n_interactions_raw = len(rows.key)
    bar.update()

    bar.set_postfix_str("dedupe+filter")
    n_duplicates = rows.collapse_duplicates()
    n_interactions = len(rows.key)
    rounds = rows.filter_min_counts(config.min_user_ratings, config.min_movie_ratings)
    if len(rows.key) == 0:
        raise WmfError(
            f"no interactions left: {n_interactions} with rating >= {config.min_rating}, "
            f"none survive min_user_ratings={config.min_user_ratings} and "
            f"min_movie_ratings={config.min_movie_ratings}"
        )
    bar.update()

    bar.set_postfix_str("split")
    starts = rows.row_starts()
    held = _holdout_mask(rows, starts, config, probe_path)
    bar.update()

    bar.set_postfix_str("write")
    counts = _write_outputs(
        rows, starts, held, _below_min_rating(rows, ratings_path, config.min_rating), ingest_dir / MOVIES, out
    )
    bar.update()
    bar.close()
    return {
        "tables": {
            "users": {"path": USERS, "rows": counts["n_users"]},
            "movies": {"path": MOVIES, "rows": counts["n_movies"]},
            "holdout": {"path": HOLDOUT, "rows": counts["n_holdout"]},
            "train": {"path": TRAIN, "rows": counts["n_train"]},
            "seen": {"path": SEEN, "rows": counts["n_seen"]},
        },
        **counts,
        "n_ratings_in": int(n_ratings_in),
        "n_interactions": int(n_interactions),
        "n_duplicates": int(n_duplicates),
        "n_below_min_rating": int(n_ratings_in - n_interactions_raw),
        "filter_rounds": rounds,
    }


def _check_config(config: IndexConfig) -> None:
    if config.holdout in ("random", "temporal") and not 0.0 < config.holdout_fraction < 1.0:
        raise WmfError(f"holdout_fraction must be in (0, 1), got {config.holdout_fraction}")
    if config.holdout not in ("none", "random", "temporal", "probe"):
        raise WmfError(f"unknown holdout {config.holdout!r}")


@dataclass
class _Rows:
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
        return (self.key % self.n_movies).astype(np.int32)

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
        self.key = _pair_key(new_user[users], new_movie[movies], self.n_movies)
        self.rating = self.rating[keep]
        if self.date is not None:
            self.date = self.date[keep]


def _read_interactions(path: Path, min_rating: int, with_date: bool) -> _Rows:
    """Read ratings >= min_rating with dense ids, sorted by (user_idx, movie_idx)."""
    columns = [pl.col("user_id", "movie_id", "rating")]
    if with_date:
        columns.append(pl.col("date").cast(pl.Int32))
    df = pl.scan_parquet(path).filter(pl.col("rating") >= min_rating).select(columns).collect()
    user_ids = df.get_column("user_id").unique().sort()
    movie_ids = df.get_column("movie_id").unique().sort()
    df = _with_idx(df.lazy(), user_ids, movie_ids).collect()
    order, key = _sort_pairs(
        df.get_column("user_idx").to_numpy(),
        df.get_column("movie_idx").to_numpy(),
        len(user_ids),
        len(movie_ids),
    )
    return _Rows(
        key=key,
        rating=df.get_column("rating").to_numpy()[order],
        date=df.get_column("date").to_numpy()[order] if with_date else None,
        user_ids=user_ids.to_numpy().astype(np.int32),
        movie_ids=movie_ids.to_numpy().astype(np.int32),
    )


@numba.njit(cache=True)
def _sort_pairs(
    users: np.ndarray, movies: np.ndarray, n_users: int, n_movies: int
) -> tuple[np.ndarray, np.ndarray]:
    """Permutation sorting by (user, movie), and the sorted keys user * n_movies + movie.

    A two-pass LSD radix sort (by movie, then stably by user): O(n), about 3x faster
    than a comparison sort of the keys at 100 M rows.
    """
    n = len(users)
    start = np.zeros(n_movies + 1, np.int64)
    for m in movies:
        start[m + 1] += 1
    for m in range(n_movies):
        start[m + 1] += start[m]
    by_movie = np.empty(n, np.int64)
    for i in range(n):
        by_movie[start[movies[i]]] = i
        start[movies[i]] += 1
    start = np.zeros(n_users + 1, np.int64)
    for u in users:
        start[u + 1] += 1
    for u in range(n_users):
        start[u + 1] += start[u]
    order = np.empty(n, np.int64)
    key = np.empty(n, np.int64)
    for i in by_movie:
        u = users[i]
        order[start[u]] = i
        key[start[u]] = np.int64(u) * n_movies + movies[i]
        start[u] += 1
    return order, key


def _pair_key(users: np.ndarray, movies: np.ndarray, n_movies: int) -> np.ndarray:
    return users.astype(np.int64) * n_movies + movies


def _with_idx(lf: pl.LazyFrame, user_ids: pl.Series, movie_ids: pl.Series) -> pl.LazyFrame:
    """Replace user_id/movie_id by their dense indexes; unknown ids drop out."""
    return (
        lf.join(_ranked(user_ids, "user_idx"), on="user_id")
        .join(_ranked(movie_ids, "movie_idx"), on="movie_id")
        .drop("user_id", "movie_id")
    )


def _ranked(ids: pl.Series, idx_name: str) -> pl.LazyFrame:
    """ids (sorted, unique) with their position: the dense index."""
    return ids.to_frame().with_row_index(idx_name).lazy()


def _holdout_mask(rows: _Rows, starts: np.ndarray, config: IndexConfig, probe_path: Path) -> np.ndarray:
    """Boolean per row: held out for evaluation."""
    if config.holdout == "none":
        return np.zeros(len(rows.key), dtype=bool)
    if config.holdout == "probe":
        return _probe_mask(rows, probe_path)
    if config.holdout == "random":
        return random_holdout(starts, rows.key, config)
    # temporal: the most recent held out; equal dates -> the larger movie_idx
    rank_key = (rows.date.astype(np.int64) + 2**31).astype(_U64)
    return _hold_largest(starts, rank_key, _holdout_counts(np.diff(starts), config))


def random_holdout(indptr: np.ndarray, keys: np.ndarray, config: IndexConfig) -> np.ndarray:
    """Per row of a user-major CSR (pair keys user * n_movies + movie): held out or not.

    Each eligible user holds out round(holdout_fraction * n) rows, those with the
    largest seeded hash of their pair: the same split for the same pairs and seed.
    """
    return _hold_largest(indptr, _hash32(keys, config.split_seed), _holdout_counts(np.diff(indptr), config))


def _hash32(key: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of (pair, seed), top 32 bits: stable across platforms and library versions."""
    return _splitmix_high32(key, _U64((seed * 0x9E3779B97F4A7C15) & (2**64 - 1)))


@numba.njit(cache=True)
def _splitmix_high32(key: np.ndarray, salt: np.uint64) -> np.ndarray:
    out = np.empty(len(key), np.uint64)
    for i in range(len(key)):
        z = (np.uint64(key[i]) ^ salt) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out[i] = (z ^ (z >> np.uint64(31))) >> np.uint64(32)
    return out


def _holdout_counts(n_per_user: np.ndarray, config: IndexConfig) -> np.ndarray:
    """round(fraction * n) per eligible user, at least one held out and one kept.

    Eligible: at least holdout_min_user_ratings (and 2) interactions.
    """
    n_hold = np.floor(config.holdout_fraction * n_per_user + 0.5).astype(np.int64)
    n_hold = np.clip(n_hold, 1, np.maximum(n_per_user - 1, 1))
    n_hold[n_per_user < max(config.holdout_min_user_ratings, 2)] = 0
    return n_hold


@numba.njit(cache=True)
def _hold_largest(starts: np.ndarray, rank_key: np.ndarray, n_hold: np.ndarray) -> np.ndarray:
    """Mark each user's n_hold rows of largest rank_key (< 2**32); ties: the later row."""
    held = np.zeros(len(rank_key), np.bool_)
    for u in range(len(n_hold)):
        k = n_hold[u]
        if k == 0:
            continue
        lo, hi = starts[u], starts[u + 1]
        # the position in the low bits makes every value distinct: ties break by row
        packed = (rank_key[lo:hi] << np.uint64(32)) | np.arange(hi - lo).astype(np.uint64)
        held[lo + np.argsort(packed)[hi - lo - k :]] = True
    return held


def _probe_mask(rows: _Rows, probe_path: Path) -> np.ndarray:
    """Rows whose (user, movie) pair is listed in probe.parquet; other probe pairs are ignored."""
    lf = pl.scan_parquet(probe_path).select(pl.col("user_id", "movie_id").cast(pl.Int32))
    user_ids = pl.Series("user_id", rows.user_ids)
    movie_ids = pl.Series("movie_id", rows.movie_ids)
    probe = _with_idx(lf, user_ids, movie_ids).collect()
    probe = _pair_key(probe["user_idx"].to_numpy(), probe["movie_idx"].to_numpy(), rows.n_movies)
    pos = np.searchsorted(rows.key, probe)
    found = pos < len(rows.key)
    pos, probe = pos[found], probe[found]
    held = np.zeros(len(rows.key), dtype=bool)
    held[pos[rows.key[pos] == probe]] = True
    return held


def _below_min_rating(rows: _Rows, ratings_path: Path, min_rating: int) -> np.ndarray:
    """Sorted pair keys of the indexed users' ratings below min_rating, on indexed movies."""
    if min_rating <= 1:
        return np.zeros(0, np.int64)
    lf = (
        pl.scan_parquet(ratings_path)
        .filter(pl.col("rating") < min_rating)
        .select(pl.col("user_id", "movie_id").cast(pl.Int32))
    )
    low = _with_idx(lf, pl.Series("user_id", rows.user_ids), pl.Series("movie_id", rows.movie_ids)).collect()
    return np.unique(_pair_key(low["user_idx"].to_numpy(), low["movie_idx"].to_numpy(), rows.n_movies))


def _write_outputs(
    rows: _Rows, starts: np.ndarray, held: np.ndarray, below: np.ndarray, titles_path: Path, out: Path
) -> dict[str, int]:
    """train.npz, holdout.parquet, seen.npz (interactions and `below` keys), users and movies."""
    movies = rows.movie_idx()
    n_users, n_movies = len(rows.user_ids), rows.n_movies
    held_n = np.add.reduceat(held, starts[:-1], dtype=np.int64)  # every user has rows
    row_n = np.diff(starts) - held_n
    indptr = np.concatenate(([0], np.cumsum(row_n))).astype(np.int64)
    train = ~held
    train_movies = movies[train]
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        out / TRAIN,
        indptr=indptr,
        indices=train_movies,
        ratings=rows.rating[train],
        shape=np.array([n_users, n_movies], dtype=np.int64),
    )
    holdout = pl.DataFrame(
        {
            "user_idx": np.repeat(np.arange(n_users, dtype=np.int32), held_n),
            "movie_idx": movies[held],
            "rating": rows.rating[held],
        },
        schema={"user_idx": pl.Int32, "movie_idx": pl.Int32, "rating": pl.Int8},
    )
    holdout.write_parquet(out / HOLDOUT, compression="zstd")
    if len(below):  # union: a duplicated pair may be rated both below and above min_rating
        seen_keys = np.union1d(rows.key, below)
        seen_ptr = np.searchsorted(seen_keys, np.arange(n_users + 1, dtype=np.int64) * n_movies)
        seen_movies = (seen_keys % n_movies).astype(np.int32)
    else:
        seen_ptr, seen_movies = starts.astype(np.int64), movies
    np.savez(out / SEEN, indptr=seen_ptr, indices=seen_movies)
    pl.DataFrame(
        {
            "user_idx": np.arange(n_users, dtype=np.int32),
            "user_id": rows.user_ids,
            "n_train": row_n.astype(np.int32),
            "n_holdout": held_n.astype(np.int32),
        }
    ).write_parquet(out / USERS, compression="zstd")
    _movies_table(rows.movie_ids, np.bincount(train_movies, minlength=n_movies), titles_path).write_parquet(
        out / MOVIES, compression="zstd"
    )
    return {
        "n_users": n_users,
        "n_movies": n_movies,
        "n_train": int(indptr[-1]),
        "n_holdout": holdout.height,
        "n_seen": len(seen_movies),
    }


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
