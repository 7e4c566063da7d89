"""The index stage's interaction files and their readers.

An index output holds three views of what each user did, all keyed by the
contiguous user/movie indexes:

- `train.npz`: the training interactions, a user-major CSR with ratings;
- `holdout.parquet`: the held-out interactions (user_idx, movie_idx, rating), the
  evaluation targets; train and holdout together are every interaction;
- `seen.npz`: every movie each user rated, at any rating, whether trained on, held
  out or below `min_rating`: what a published recommendation must never contain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
import polars as pl

from wmf.layout import Index

Holdout = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Interactions:
    """User-major CSR of interactions (rows: users, columns: movies, ascending in a row)."""

    indptr: np.ndarray
    indices: np.ndarray
    ratings: np.ndarray
    shape: tuple[int, int]

    @property
    def n_users(self) -> int:
        return self.shape[0]

    @property
    def n_movies(self) -> int:
        return self.shape[1]

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    def to_torch(self, device: Any = "cpu", values: bool = False) -> Any:
        """torch sparse CSR float32: ones (implicit feedback) or the ratings when `values`."""
        import torch

        data = self.ratings.astype(np.float32) if values else np.ones(self.nnz, np.float32)
        return torch.sparse_csr_tensor(
            torch.from_numpy(self.indptr),
            torch.from_numpy(self.indices.astype(np.int64)),
            torch.from_numpy(data),
            size=self.shape,
            device=device,
            check_invariants=False,  # load_train's CSR is valid by construction
        )


def load_train(index_dir: Path) -> Interactions:
    with np.load(Path(index_dir) / Index.TRAIN, allow_pickle=False) as z:
        shape = z["shape"]
        return Interactions(
            indptr=z["indptr"],
            indices=z["indices"],
            ratings=z["ratings"],
            shape=(int(shape[0]), int(shape[1])),
        )


def load_holdout(index_dir: Path) -> Holdout:
    """(user_idx, movie_idx) of the held-out interactions, sorted by user then movie."""
    df = pl.read_parquet(Path(index_dir) / Index.HOLDOUT, columns=["user_idx", "movie_idx"])
    return (
        df.get_column("user_idx").to_numpy().astype(np.int32, copy=False),
        df.get_column("movie_idx").to_numpy().astype(np.int32, copy=False),
    )


def load_seen(index_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) of every movie each user rated: the export's exclusion CSR."""
    with np.load(Path(index_dir) / Index.SEEN, allow_pickle=False) as z:
        return z["indptr"], z["indices"]


def distinct(values: np.ndarray) -> np.ndarray:
    """np.unique, in one pass when `values` is already sorted (a holdout is user-major)."""
    values = np.asarray(values)
    if len(values) > 1 and np.all(values[1:] >= values[:-1]):
        return values[np.concatenate(([True], values[1:] != values[:-1]))]
    return np.unique(values)


def sample_users(holdout: Holdout, n: int, seed: int) -> Holdout:
    """The held-out pairs of a fixed random sample of `n` users (all of them when n is 0)."""
    users = distinct(holdout[0])
    if n <= 0 or n >= len(users):
        return holdout
    chosen = np.sort(np.random.default_rng(seed).choice(users, n, replace=False))
    keep = np.isin(holdout[0], chosen)
    return holdout[0][keep], holdout[1][keep]


def load_all(index_dir: Path) -> Interactions:
    """Every interaction, training and held out, as one CSR: what a refit trains on."""
    train = load_train(index_dir)
    df = pl.read_parquet(Path(index_dir) / Index.HOLDOUT)
    users = df.get_column("user_idx").to_numpy().astype(np.int64)
    held_ptr = np.zeros(train.n_users + 1, np.int64)
    np.cumsum(np.bincount(users, minlength=train.n_users), out=held_ptr[1:])
    indptr, indices, ratings = _merge_rows(
        train.indptr,
        train.indices,
        train.ratings,
        held_ptr,
        df.get_column("movie_idx").to_numpy().astype(train.indices.dtype),
        df.get_column("rating").to_numpy().astype(train.ratings.dtype),
    )
    return Interactions(indptr, indices, ratings, train.shape)


@numba.njit(cache=True)
def _merge_rows(a_ptr, a_idx, a_val, b_ptr, b_idx, b_val):  # pragma: no cover - numba
    """Row-wise merge of two CSRs with ascending, disjoint columns: O(nnz), order kept."""
    n = a_ptr.shape[0] - 1
    ptr = a_ptr + b_ptr
    idx = np.empty(ptr[n], a_idx.dtype)
    val = np.empty(ptr[n], a_val.dtype)
    for r in range(n):
        i, j, o = a_ptr[r], b_ptr[r], ptr[r]
        while i < a_ptr[r + 1] or j < b_ptr[r + 1]:
            if j == b_ptr[r + 1] or (i < a_ptr[r + 1] and a_idx[i] < b_idx[j]):
                idx[o], val[o] = a_idx[i], a_val[i]
                i += 1
            else:
                idx[o], val[o] = b_idx[j], b_val[j]
                j += 1
            o += 1
    return ptr, idx, val
