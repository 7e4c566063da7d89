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

import datetime
from concurrent.futures import ThreadPoolExecutor
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
    ratings = _scan_ratings(ratings_path, config.until)
    n_ratings_in = ratings.select(pl.len()).collect().item()
    rows = _read_interactions(ratings, ratings_path, config.min_rating, config.holdout == "temporal")
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
        rows, starts, held, _below_min_rating(rows, ratings, config.min_rating), ingest_dir / MOVIES, out
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
    if config.until:
        until_date(config.until)


def until_date(until: str) -> datetime.date:
    """The last day `--until` keeps; a clear error for anything but YYYY-MM-DD."""
    try:
        return datetime.date.fromisoformat(until)
    except ValueError:
        raise WmfError(f"until must be a date as YYYY-MM-DD, got {until!r}") from None


def _scan_ratings(path: Path, until: str) -> pl.LazyFrame:
    """The ratings the index sees: those dated up to `until` (all when it is empty)."""
    lf = pl.scan_parquet(path)
    return lf.filter(pl.col("date") <= until_date(until)) if until else lf


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
        return _movie_of(self.key, self.n_movies)

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


def _read_interactions(ratings: pl.LazyFrame, path: Path, min_rating: int, with_date: bool) -> _Rows:
    """Read ratings >= min_rating with dense ids, sorted by (user_idx, movie_idx)."""
    columns = [pl.col("user_id", "movie_id", "rating")]
    if with_date:
        columns.append(pl.col("date").cast(pl.Int32))
    df = ratings.filter(pl.col("rating") >= min_rating).select(columns).collect()
    users = df.get_column("user_id").cast(pl.Int32).to_numpy()
    movies = df.get_column("movie_id").cast(pl.Int32).to_numpy()
    user_ids, user_pos = _dense(users, path, "user_id")
    movie_ids, movie_pos = _dense(movies, path, "movie_id")
    rating = df.get_column("rating").to_numpy()
    date = df.get_column("date").to_numpy() if with_date else np.zeros(0, np.int32)
    n_chunks = max(1, min(numba.get_num_threads(), len(users) // 1_000_000))
    if np.any(movies[1:] < movies[:-1]):
        first, _ = _stable_order(_gather(movie_pos, movies), len(movie_ids), np.empty(0, np.int64), n_chunks)
    else:  # the ingest writes the ratings movie by movie, as the raw files hold them
        first = np.empty(0, np.int64)
    del df  # its columns were copied out: keep the peak down
    n_users, n_movies = len(user_ids), len(movie_ids)
    shift = _bucket_shift(n_users)
    key, rating, date = _user_major(
        users, movies, rating, date, user_pos, movie_pos, n_users, n_movies, first, n_chunks, shift
    )
    return _Rows(key, rating, date if with_date else None, user_ids, movie_ids)


def _dense(ids: np.ndarray, source: Path, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(the sorted distinct ids, a table from id to its position among them): contiguous
    indexes in O(n), a lookup table over 0..max id (2.6 M customer ids: 10 MB) instead of
    a sort or a join."""
    if len(ids) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    if ids.min() < 0:  # the lookup table below would be indexed out of bounds
        raise WmfError(f"{source}: column {column} holds a negative id, {int(ids.min())}")
    present = _present(ids, int(ids.max()) + 1)
    distinct = np.flatnonzero(present).astype(np.int32)
    position = np.full(len(present), -1, np.int32)
    position[distinct] = np.arange(len(distinct), dtype=np.int32)
    return distinct, position


@numba.njit(cache=True, parallel=True)
def _present(ids, size):
    present = np.zeros(size, np.bool_)
    for i in numba.prange(len(ids)):
        present[ids[i]] = True  # every writer stores the same value
    return present


@numba.njit(cache=True, parallel=True)
def _gather(table, at):
    """table[at] on every core (numpy's fancy indexing runs on one)."""
    out = np.empty(len(at), table.dtype)
    for i in numba.prange(len(at)):
        out[i] = table[at[i]]
    return out


# Buckets of users in the sort's first pass, about. Measured at 100 M rows on 2 cores
# (first pass / second pass, s): 1876 buckets 3.6 / 1.7, 938: 2.6 / 0.5, 118: 2.1 / 0.6;
# one counting sort by user, scattering every column at once: 6.8 s in all.
_BUCKETS = 128


def _bucket_shift(n_users: int) -> int:
    return max(0, (max(n_users, 1) - 1) // _BUCKETS).bit_length()


@numba.njit(cache=True, parallel=True)
def _user_major(users, movies, rating, date, user_pos, movie_pos, n_users, n_movies, first, n_chunks, shift):
    """The rows taken in the order `first` (file order when empty), stably sorted by user:
    their keys user_idx * n_movies + movie_idx, ratings and dates (when given).

    Rows in movie order come out sorted by key. An MSD radix sort in two passes: the rows
    are first scattered by bucket of 2 ** shift users (each chunk its own slots, laid out
    in chunk order), then each bucket is counting-sorted by user on its own. Both passes
    keep the rows' order within a user, so the result is that of a serial stable sort
    whatever the number of chunks; ids become indexes on the fly.
    """
    n, in_order, with_date = len(users), len(first) == 0, len(date) > 0
    n_buckets = ((n_users - 1) >> shift) + 1 if n_users else 0
    counts = np.zeros((n_chunks, n_buckets), np.int64)
    for t in numba.prange(n_chunks):
        for p in range(t * n // n_chunks, (t + 1) * n // n_chunks):
            counts[t, user_pos[users[p if in_order else first[p]]] >> shift] += 1
    bucket_start = np.empty(n_buckets + 1, np.int64)
    slot = 0
    for b in range(n_buckets):
        bucket_start[b] = slot
        for t in range(n_chunks):
            c = counts[t, b]
            counts[t, b] = slot
            slot += c
    bucket_start[n_buckets] = n
    by_user = np.empty(n, np.int32)
    by_movie = np.empty(n, np.int32)
    by_rating = np.empty(n, rating.dtype)
    by_date = np.empty(n if with_date else 0, date.dtype)
    for t in numba.prange(n_chunks):
        for p in range(t * n // n_chunks, (t + 1) * n // n_chunks):
            i = p if in_order else first[p]
            u = user_pos[users[i]]
            at = counts[t, u >> shift]
            counts[t, u >> shift] += 1
            by_user[at], by_movie[at], by_rating[at] = u, movie_pos[movies[i]], rating[i]
            if with_date:
                by_date[at] = date[i]
    key = np.empty(n, np.int64)
    out_rating = np.empty(n, rating.dtype)
    out_date = np.empty(n if with_date else 0, date.dtype)
    for b in numba.prange(n_buckets):
        lo, hi, first_user = bucket_start[b], bucket_start[b + 1], b << shift
        cursor = np.zeros((1 << shift) + 1, np.int64)
        for k in range(lo, hi):
            cursor[by_user[k] - first_user + 1] += 1
        cursor[0] = lo
        for v in range(1, len(cursor)):
            cursor[v] += cursor[v - 1]
        for k in range(lo, hi):
            u = by_user[k]
            at = cursor[u - first_user]
            cursor[u - first_user] += 1
            key[at] = np.int64(u) * n_movies + by_movie[k]
            out_rating[at] = by_rating[k]
            if with_date:
                out_date[at] = by_date[k]
    return key, out_rating, out_date


@numba.njit(cache=True, parallel=True)
def _stable_order(values, n_values, first, n_chunks):
    """Positions 0..n-1 taken in the order `first` (identity when empty), stably sorted by value,
    and where each value's run starts (n_values + 1 offsets).

    A counting sort in parallel: each chunk counts its values, the chunks' slots are laid
    out value by value in chunk order, then each chunk scatters its own positions. The
    result is that of the serial sort whatever the number of chunks.
    """
    n = len(values)
    identity = len(first) == 0
    counts = np.zeros((n_chunks, n_values), np.int64)
    for t in numba.prange(n_chunks):
        for p in range(t * n // n_chunks, (t + 1) * n // n_chunks):
            counts[t, values[p if identity else first[p]]] += 1
    slot = 0
    starts = np.empty(n_values + 1, np.int64)
    starts[n_values] = n
    for v in range(n_values):
        starts[v] = slot
        for t in range(n_chunks):
            c = counts[t, v]
            counts[t, v] = slot
            slot += c
    out = np.empty(n, np.int64)
    for t in numba.prange(n_chunks):
        for p in range(t * n // n_chunks, (t + 1) * n // n_chunks):
            i = p if identity else first[p]
            v = values[i]
            out[counts[t, v]] = i
            counts[t, v] += 1
    return out, starts


@numba.njit(cache=True, parallel=True)
def _movie_of(key, n_movies):
    out = np.empty(len(key), np.int32)
    for i in numba.prange(len(key)):
        out[i] = key[i] % n_movies
    return out


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


@numba.njit(cache=True, parallel=True)
def _splitmix_high32(key: np.ndarray, salt: np.uint64) -> np.ndarray:
    out = np.empty(len(key), np.uint64)
    for i in numba.prange(len(key)):
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


@numba.njit(cache=True, parallel=True)
def _hold_largest(starts: np.ndarray, rank_key: np.ndarray, n_hold: np.ndarray) -> np.ndarray:
    """Mark each user's n_hold rows of largest rank_key (< 2**32); ties: the later row."""
    held = np.zeros(len(rank_key), np.bool_)
    for u in numba.prange(len(n_hold)):
        k = n_hold[u]
        if k == 0:
            continue
        lo, hi = starts[u], starts[u + 1]
        # the position in the low bits makes every value distinct: ties break by row
        packed = (rank_key[lo:hi] << np.uint64(32)) | np.arange(hi - lo).astype(np.uint64)
        threshold = np.partition(packed, hi - lo - k)[hi - lo - k]
        held[lo:hi] = packed >= threshold
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


def _below_min_rating(rows: _Rows, ratings: pl.LazyFrame, min_rating: int) -> np.ndarray:
    """Sorted pair keys of the indexed users' ratings below min_rating, on indexed movies."""
    if min_rating <= 1:
        return np.zeros(0, np.int64)
    lf = ratings.filter(pl.col("rating") < min_rating).select(pl.col("user_id", "movie_id").cast(pl.Int32))
    low = _with_idx(lf, pl.Series("user_id", rows.user_ids), pl.Series("movie_id", rows.movie_ids)).collect()
    return np.unique(_pair_key(low["user_idx"].to_numpy(), low["movie_idx"].to_numpy(), rows.n_movies))


def _write_outputs(
    rows: _Rows, starts: np.ndarray, held: np.ndarray, below: np.ndarray, titles_path: Path, out: Path
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
        lambda: np.savez(out / TRAIN, **train),
        lambda: np.savez(out / SEEN, indptr=seen_ptr, indices=seen_movies),
        lambda: holdout.write_parquet(out / HOLDOUT, compression="zstd"),
        lambda: users.write_parquet(out / USERS, compression="zstd"),
        lambda: movies_table.write_parquet(out / MOVIES, compression="zstd"),
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
