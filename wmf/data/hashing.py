"""splitmix64: counter-based random numbers, stable across platforms and library versions.

The holdout draws a pair's rank from a hash of (pair, seed), and the generator every
random number from a hash of (seed, stream, index), so both give the same bits whatever
the thread scheduling or numpy's version.
"""

from __future__ import annotations

import numba
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, inline="always")
def mix64(x: np.uint64) -> np.uint64:  # pragma: no cover - numba
    """splitmix64's finaliser: a well-mixed 64-bit hash of x."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def salt(seed: int) -> np.uint64:
    """A seed spread over 64 bits (negative seeds too)."""
    return np.uint64((seed * int(GOLDEN)) & (2**64 - 1))


@numba.njit(cache=True, parallel=True)
def high32(keys, salt):  # pragma: no cover - numba
    """The top 32 bits of splitmix64 of each key ^ salt, as uint64."""
    out = np.empty(len(keys), np.uint64)
    for i in numba.prange(len(keys)):
        out[i] = mix64((np.uint64(keys[i]) ^ salt) + GOLDEN) >> np.uint64(32)
    return out


@numba.njit(cache=True, inline="always")
def stream_key(key: np.uint64, stream: int, i: int) -> np.uint64:  # pragma: no cover - numba
    """The key of the i-th sequence of a stream of numbers drawn from `key`."""
    return mix64(mix64(key + np.uint64(stream) * GOLDEN) + np.uint64(i) * GOLDEN)


@numba.njit(cache=True, inline="always")
def uniform(key: np.uint64, i: int) -> float:  # pragma: no cover - numba
    """The i-th uniform in (0, 1) of the stream `key`."""
    h = mix64(key + np.uint64(i) * GOLDEN)
    return (float(h >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)
