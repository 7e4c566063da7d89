"""Small hand-built interaction matrices for the training tests."""

from __future__ import annotations

import numpy as np
import torch

from wmf.data.interactions import Interactions


def dense_matrices(
    train: Interactions, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, ratings) as dense tensors, for checks against the notebook's dense formula."""
    M = torch.zeros(train.shape, dtype=dtype)
    R = torch.zeros(train.shape, dtype=dtype)
    rows = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
    M[rows, train.indices] = 1
    R[rows, train.indices] = torch.as_tensor(train.ratings, dtype=dtype)
    return M, R


def random_interactions(n_users: int, n_movies: int, density: float, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_movies)) < density
    rows, cols = np.nonzero(mask)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(rows, minlength=n_users))
    ratings = rng.integers(1, 6, size=len(cols)).astype(np.int8)
    return Interactions(indptr, cols.astype(np.int32), ratings, (n_users, n_movies))


def planted(
    n_users: int, n_movies: int, rank: int, per_user: int, seed: int = 0
) -> tuple[Interactions, tuple[np.ndarray, np.ndarray]]:
    """Users pick movies from a planted low-rank taste model with popularity skew;
    20% of each user's picks are held out."""
    rng = np.random.default_rng(seed)
    taste_u = rng.normal(size=(n_users, rank))
    taste_m = rng.normal(size=(n_movies, rank))
    popularity = rng.normal(size=n_movies) * 1.0
    indptr, indices, hold_u, hold_m = [0], [], [], []
    for u in range(n_users):
        logits = 2.0 * taste_u[u] @ taste_m.T / np.sqrt(rank) + popularity
        prob = np.exp(logits - logits.max())
        prob /= prob.sum()
        picks = rng.choice(n_movies, size=per_user, replace=False, p=prob)
        n_hold = per_user // 5
        hold_u.extend([u] * n_hold)
        hold_m.extend(sorted(picks[:n_hold]))
        kept = np.sort(picks[n_hold:])
        indices.extend(kept)
        indptr.append(indptr[-1] + len(kept))
    train = Interactions(
        np.array(indptr, dtype=np.int64),
        np.array(indices, dtype=np.int32),
        np.full(len(indices), 5, dtype=np.int8),
        (n_users, n_movies),
    )
    return train, (np.array(hold_u, dtype=np.int32), np.array(hold_m, dtype=np.int32))
