"""Per-user holdouts of a user-major CSR: which rows each user holds out.

A user with n interactions (and at least `min_user` of them) holds out round(fraction * n)
rows, at least one and never all: those of largest rank. The index ranks by a seeded hash
of the pair (random) or by date (temporal); the tuner carves its validation share the same
way, with a seed of its own.
"""

from __future__ import annotations

import numba
import numpy as np

from wmf.data.hashing import high32, salt


def random_holdout(
    indptr: np.ndarray, keys: np.ndarray, fraction: float, seed: int, min_user: int
) -> np.ndarray:
    """Per row of a user-major CSR (pair keys user * n_movies + movie): held out or not.

    The rows of largest splitmix64 hash of (pair, seed): the same split for the same pairs
    and seed, on any platform.
    """
    counts = holdout_counts(np.diff(indptr), fraction, min_user)
    return hold_largest(indptr, high32(keys, salt(seed)), counts)


def holdout_counts(n_per_user: np.ndarray, fraction: float, min_user: int) -> np.ndarray:
    """round(fraction * n) per eligible user, at least one held out and one kept.

    Eligible: at least `min_user` (and 2) interactions.
    """
    n_hold = np.floor(fraction * n_per_user + 0.5).astype(np.int64)
    n_hold = np.clip(n_hold, 1, np.maximum(n_per_user - 1, 1))
    n_hold[n_per_user < max(min_user, 2)] = 0
    return n_hold


@numba.njit(cache=True, parallel=True)
def hold_largest(
    starts: np.ndarray, rank_key: np.ndarray, n_hold: np.ndarray
) -> np.ndarray:  # pragma: no cover
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
