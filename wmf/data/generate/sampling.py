"""Who watches what, and how they rate it: the generator's model, sampled in numba.

Every random draw is a hash of (seed, stream, index) (`wmf.data.hashing`), so the output is
byte-identical for a seed whatever the thread scheduling.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from wmf.data.generate.shape import (
    DAY,
    DIMS,
    FIX,
    N_MOVIES,
    NOISE,
    PICK,
    POPULARITY_EXPONENT,
    POPULARITY_OFFSET,
    POPULARITY_TAIL,
    RATE,
    RATING_CDF,
    RATING_NOISE,
    RATING_TASTE_WEIGHT,
    n_days,
)
from wmf.data.hashing import stream_key, uniform

_BLOCK = 64


class Taste:
    """Latent vectors, biases and popularity of the watching and rating model."""

    def __init__(self, rng: np.random.Generator, n_users: int, n_movies: int) -> None:
        movie_vec = rng.standard_normal((n_movies, DIMS))
        movie_vec /= np.linalg.norm(movie_vec, axis=1, keepdims=True)  # same taste spread for every movie
        rank = rng.permutation(n_movies)
        # the offset in the real catalogue's units: the same curve of rank / n_movies at any size
        log_pop = -POPULARITY_EXPONENT * np.log(rank + POPULARITY_OFFSET * n_movies / N_MOVIES)
        log_pop -= POPULARITY_TAIL * (rank / n_movies) ** 2
        log_pop -= log_pop.max()
        self.log_pop = log_pop.astype(np.float32)
        self.user_vec = rng.standard_normal((n_users, DIMS)).astype(np.float32)
        self.movie_vec = movie_vec.astype(np.float32)
        self.user_bias = (0.35 * rng.standard_normal(n_users)).astype(np.float32)
        self.movie_bias = (0.5 * rng.standard_normal(n_movies) + 0.15 * log_pop).astype(np.float32)


def allocate(weights: np.ndarray, total: int, lo: int, hi: int) -> np.ndarray:
    """Integer counts in [lo, hi] proportional to `weights`, summing exactly to `total`."""
    if not lo * len(weights) <= total <= hi * len(weights):
        raise ValueError(f"cannot split {total} into {len(weights)} counts in [{lo}, {hi}]")
    w = weights / weights.sum()
    t_lo, t_hi = 0.0, float(total) * 2.0 / w.min()

    def counts(t: float) -> np.ndarray:
        return np.clip(np.floor(w * t), lo, hi).astype(np.int64)

    for _ in range(200):
        mid = 0.5 * (t_lo + t_hi)
        if counts(mid).sum() <= total:
            t_lo = mid
        else:
            t_hi = mid
    c = counts(t_lo)
    short = total - int(c.sum())
    if short:
        room = np.flatnonzero(c < hi)
        frac = w[room] * t_lo - np.floor(w[room] * t_lo)
        c[room[np.argsort(-frac, kind="stable")[:short]]] += 1
    assert int(c.sum()) == total
    return c


@numba.njit(cache=True, parallel=True)
def sample_watched(
    lo, hi, indptr, user_vec, movie_vec_t, log_pop, taste_weight, pair_noise, noise_share, key, movies
):
    """Each user's movies: a `noise_share` of them drawn by popularity alone, the rest from
    the user's own table exp(log_pop + taste_weight * user . movie + pair_noise * z), both
    without replacement (see _take)."""
    n_movies = movie_vec_t.shape[1]
    n_blocks = (n_movies + _BLOCK - 1) // _BLOCK
    pop_weight = np.exp(log_pop)
    users_per_task = 256
    n_tasks = (hi - lo + users_per_task - 1) // users_per_task
    for task in numba.prange(n_tasks):
        seen = np.zeros(n_movies, np.int32)
        weight = np.empty(n_movies, np.float32)
        block_cdf = np.empty(n_blocks, np.float64)
        for u in range(lo + task * users_per_task, min(lo + (task + 1) * users_per_task, hi)):
            start, n = indptr[u], indptr[u + 1] - indptr[u]
            k = stream_key(key, PICK, u)
            n_noise = min(int(noise_share * n + uniform(k, 0)), n)  # rounded at random
            weight[:] = pop_weight
            tries = _take(weight, block_cdf, seen, u + 1, movies, start, 0, n_noise, k, 1)
            key32 = np.uint32(stream_key(key, NOISE, u) >> np.uint64(32))
            _taste_weights(user_vec[u], movie_vec_t, log_pop, taste_weight, pair_noise, key32, weight)
            for j in range(start, start + n_noise):
                weight[movies[j]] = 0.0
            _take(weight, block_cdf, seen, u + 1, movies, start, n_noise, n, k, tries)


@numba.njit(cache=True)
def _take(weight, block_cdf, seen, mark, movies, start, got, n, k, tries):
    """Fill movies[start + got : start + n] by successive sampling without replacement with
    probability proportional to `weight` (movies taken before must have weight 0).

    Draws are taken with replacement and repeats rejected; once the movies taken hold half
    of the table's mass, their weights are zeroed and the block sums rebuilt, so at least
    half the draws are accepted even for users who watch most of the catalogue. Marks
    the movies taken in `seen`; returns the next index of the random stream `k`.
    """
    table_mass, taken, zeroed = _block_sums(weight, block_cdf), 0.0, got
    while got < n:
        if taken > 0.5 * table_mass:
            for j in range(start + zeroed, start + got):
                weight[movies[j]] = 0.0
            table_mass, taken, zeroed = _block_sums(weight, block_cdf), 0.0, got
        m = _draw(weight, block_cdf, uniform(k, tries) * table_mass)
        tries += 1
        if m >= 0 and seen[m] != mark:
            seen[m] = mark
            movies[start + got] = m
            got += 1
            taken += weight[m]
    return tries


@numba.njit(cache=True, inline="always")
def _taste_weights(taste, movie_vec_t, log_pop, taste_weight, pair_noise, key32, out):
    """exp(log_pop + taste_weight * taste . movie + pair_noise * z) of every movie, in float32
    (vectorised), z being the user's own standardised noise for that movie."""
    for m in range(out.shape[0]):
        out[m] = log_pop[m] + pair_noise * _pair_normal(key32, m)
    for d in range(movie_vec_t.shape[0]):
        t = np.float32(taste_weight * taste[d])
        for m in range(out.shape[0]):
            out[m] += t * movie_vec_t[d, m]
    _exp_inplace(out)


@numba.njit(cache=True, inline="always")
def _pair_normal(key32, m):
    """About N(0, 1): the standardised sum of the four bytes of a 32-bit hash of (key32, m).

    32-bit arithmetic so that the loop over movies vectorises."""
    x = np.uint32(m) ^ key32
    x = np.uint32((np.uint64(x) * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF))
    x ^= x >> np.uint32(15)
    x = np.uint32((np.uint64(x) * np.uint64(0x85EBCA77)) & np.uint64(0xFFFFFFFF))
    x ^= x >> np.uint32(13)
    x = np.uint32((np.uint64(x) * np.uint64(0xC2B2AE3D)) & np.uint64(0xFFFFFFFF))
    x ^= x >> np.uint32(16)
    b = np.uint32(255)
    total = (x & b) + ((x >> np.uint32(8)) & b) + ((x >> np.uint32(16)) & b) + (x >> np.uint32(24))
    return (np.float32(total) - np.float32(510.0)) * np.float32(1.0 / 147.8)


@numba.njit(cache=True, inline="always")
def _exp_inplace(x):
    """x <- exp(x) for float32 x in [-80, 80]: Cody-Waite reduction and a degree-7 polynomial
    (within 2 ulp). Written out because numba's math.exp does not vectorise; the exponent is
    added through the integer view of the array."""
    bits = x.view(np.int32)
    for i in range(x.shape[0]):
        v = max(min(x[i], np.float32(80.0)), np.float32(-80.0))
        n = np.floor(v * np.float32(1.4426950408889634) + np.float32(0.5))
        r = v - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        x[i] = p * r * r + r + np.float32(1.0)
        bits[i] += np.int32(n) << 23


@numba.njit(cache=True, inline="always")
def _block_sums(weight, block_cdf):
    """Running sums of `weight` over blocks of _BLOCK movies; returns the total."""
    total = 0.0
    for b in range(block_cdf.shape[0]):
        s = np.float32(0.0)
        for m in range(b * _BLOCK, min((b + 1) * _BLOCK, weight.shape[0])):
            s += weight[m]
        total += s
        block_cdf[b] = total
    return total


@numba.njit(cache=True, inline="always")
def _draw(weight, block_cdf, x):
    """The movie where the running sum of `weight` passes x, or -1 if rounding lands past the end."""
    b = np.searchsorted(block_cdf, x, side="right")
    if b >= block_cdf.shape[0]:
        return -1
    r = np.float32(x - (block_cdf[b - 1] if b > 0 else 0.0))
    s = np.float32(0.0)
    for m in range(b * _BLOCK, min((b + 1) * _BLOCK, weight.shape[0])):
        s += weight[m]
        if s > r and weight[m] > 0.0:
            return m
    return -1


@numba.njit(cache=True)
def ensure_min_ratings(indptr, movies, per_movie, min_count, key):
    """Give every movie `min_count` ratings by swapping them for a random rating of a
    random user who has not rated it (keeps every user's count and the total, and
    takes from movies in proportion to their counts)."""
    n_users = indptr.shape[0] - 1
    k = stream_key(key, FIX, 0)
    draw = 0
    for m in range(per_movie.shape[0]):
        budget = 1000 * n_users + 1000
        while per_movie[m] < min_count:
            if budget == 0:
                raise ValueError("could not give every movie its minimum number of ratings")
            budget -= 1
            u = min(int(uniform(k, draw) * n_users), n_users - 1)
            start, n = indptr[u], indptr[u + 1] - indptr[u]
            victim = start + min(int(uniform(k, draw + 1) * n), n - 1)
            draw += 2
            if per_movie[movies[victim]] <= min_count:
                continue
            if m in movies[start : start + n]:
                continue
            per_movie[movies[victim]] -= 1
            movies[victim] = m
            per_movie[m] += 1


def rate(
    indptr: np.ndarray, movies: np.ndarray, taste: Taste, start_day: np.ndarray, key: np.uint64
) -> tuple[np.ndarray, np.ndarray]:
    """Ratings (int8 1..5) and days since FIRST_DAY (int16) of every watched pair."""
    score = np.empty(movies.shape[0], np.float32)
    days = np.empty(movies.shape[0], np.int16)
    _score_pairs(
        indptr,
        movies,
        taste.user_vec,
        taste.movie_vec,
        taste.user_bias,
        taste.movie_bias,
        start_day,
        n_days(),
        key,
        score,
        days,
    )
    cuts = np.quantile(score[:: max(1, score.shape[0] // 2_000_000)], RATING_CDF)
    ratings = (np.searchsorted(cuts, score) + 1).astype(np.int8)
    return ratings, days


@numba.njit(cache=True, parallel=True)
def _score_pairs(
    indptr, movies, user_vec, movie_vec, user_bias, movie_bias, start_day, n_days, key, score, days
):
    """Latent rating score (biases + the user's own taste . movie + noise) and day of each pair."""
    for u in numba.prange(indptr.shape[0] - 1):
        kr = stream_key(key, RATE, u)
        kd = stream_key(key, DAY, u)
        first = start_day[u]
        for j in range(indptr[u], indptr[u + 1]):
            m = movies[j]
            affinity = 0.0
            for d in range(user_vec.shape[1]):
                affinity += user_vec[u, d] * movie_vec[m, d]
            i = j - indptr[u]
            normal = math.sqrt(-2.0 * math.log(uniform(kr, 2 * i))) * math.cos(
                2.0 * math.pi * uniform(kr, 2 * i + 1)
            )
            score[j] = user_bias[u] + movie_bias[m] + RATING_TASTE_WEIGHT * affinity + RATING_NOISE * normal
            days[j] = first + int(uniform(kd, i) * (n_days - first))


@numba.njit(cache=True)
def movie_major(movies, per_movie):
    """Stable counting sort: pair positions grouped by movie, users ascending inside."""
    pos = np.zeros(per_movie.shape[0], np.int64)
    for m in range(1, per_movie.shape[0]):
        pos[m] = pos[m - 1] + per_movie[m - 1]
    order = np.empty(movies.shape[0], np.int64)
    for j in range(movies.shape[0]):
        m = movies[j]
        order[pos[m]] = j
        pos[m] += 1
    return order
