"""Synthetic Netflix Prize data in the Kaggle layout, as hard to learn from as the real set.

The real ratings cannot be redistributed, so tests, benchmarks and demos run on this
generator instead. At scale 1 it has the real set's shape (17,770 movies, 480,189
users, 100,480,507 ratings, heavy-tailed popularity and activity, no duplicate pair),
and its watching is driven by latent tastes so that a factorization model has
something real to find that popularity cannot explain, but no more than on the real
data: defaults chosen on an easy synthetic set are wrong on the real one.

Model (d = 16): every movie has a popularity (Zipf-like by a random rank, a plateau
of blockbusters, a long tail bent down at the end) and a unit latent vector; every
user has an own taste vector, N(0, I). A share NOISE_SHARE of each user's movies is
drawn by popularity alone; the rest are drawn with weights
popularity * exp(TASTE_WEIGHT * taste . movie + PAIR_NOISE * z), z an approximately
normal number of that user and movie that no taste explains; both draws are without
replacement (exact successive sampling: draws with replacement, repeats rejected).
The user's table is computed for every user, 17,770 weights at a time, in vectorised
float32 loops. Calibrated (`benchmarks/bench_generate.py --difficulty`) so that at
scale 0.1 with a 20% random holdout the best of an ALS grid reaches Recall@20 ~0.31
and popularity ~half of it, as on the real data. Ratings come from
user bias + movie bias + taste . movie + noise, cut at the quantiles
of the real rating distribution. Customer ids are drawn without replacement from
1..2,649,429. Every random draw is a hash of (seed, stream, index), so the output
is byte-identical for a seed whatever the thread scheduling.

Tiny scales: every movie gets at least min(3, ratings // movies, users) ratings.
A movie left with none (only below scale ~0.00018) gets no `MovieID:` block at all,
so no file ever holds an empty block; such a file may then be empty.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import numba
import numpy as np
from tqdm.auto import tqdm

FULL_USERS = 480_189
FULL_RATINGS = 100_480_507
N_MOVIES = 17_770
MAX_CUSTOMER_ID = 2_649_429
RATING_FILES = (
    ("combined_data_1.txt", 1, 4499),
    ("combined_data_2.txt", 4500, 9210),
    ("combined_data_3.txt", 9211, 13367),
    ("combined_data_4.txt", 13368, 17770),
)
TITLES_FILE = "movie_titles.csv"
PROBE_FILE = "probe.txt"
FIRST_DAY = date(1999, 11, 11)
LAST_DAY = date(2005, 12, 31)
PROBE_FRACTION = 1_408_395 / FULL_RATINGS
# Cumulative shares of ratings 1..4 in the real data (mean 3.60).
RATING_CDF = (0.046, 0.147, 0.434, 0.770)
MIN_MOVIE_RATINGS = 3

DIMS = 16
# log popularity = -EXPONENT * log(rank + OFFSET) - TAIL * (rank / movies)^2: a plateau of
# blockbusters, a long tail bent down at its end (at scale 1: median 560 ratings per movie
# as in the real set, max 176k, real 233k; min 21, real 3).
POPULARITY_EXPONENT = 3.5
POPULARITY_OFFSET = 300.0
POPULARITY_TAIL = 5.0
# Watching: the standard deviation of the taste term in the log weights, that of the
# per-(user, movie) noise, and the share of each user's movies drawn by popularity alone.
TASTE_WEIGHT = 3.0
PAIR_NOISE = 2.5
NOISE_SHARE = 0.15
USER_ACTIVITY_SIGMA = 1.25
RATING_TASTE_WEIGHT = 0.8
RATING_NOISE = 0.9

# Streams of the counter-based random numbers.
_PICK, _RATE, _DAY, _PROBE, _FIX, _NOISE = 1, 2, 3, 4, 5, 6
_ROWS_PER_WRITE = 4_000_000
_USERS_PER_STEP = 32_768
_BLOCK = 64
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def generate(
    out: Path,
    scale: float = 1.0,
    seed: int = 0,
    progress: bool = True,
    users: int | None = None,
    movies: int = N_MOVIES,
    ratings: int | None = None,
) -> dict:
    """Write combined_data_1..4.txt, movie_titles.csv and probe.txt into `out`.

    `scale` sets users and ratings as shares of the real set's; `users`, `movies` and
    `ratings` override them, so another real set's shape can be mimicked (943 users,
    1,682 movies, 100,000 ratings: the real 100k set). Movie ids are 1..movies, so
    fewer movies are split among the four files as the real ids are. Returns the counts and the shape
    statistics of what was written.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if not 1 <= movies <= N_MOVIES:
        raise ValueError(f"movies must be in 1..{N_MOVIES}, got {movies}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_users = max(1, round(FULL_USERS * scale) if users is None else users)
    n_ratings = round(FULL_RATINGS * scale) if ratings is None else ratings
    n_ratings = min(max(n_users, n_ratings), n_users * movies)
    rng = np.random.default_rng(seed)
    key = np.uint64(_mix(np.uint64((seed * int(_GOLDEN) + 0x5EED) % 2**64)))

    activity = _allocate(rng.lognormal(0.0, USER_ACTIVITY_SIGMA, n_users), n_ratings, 1, int(0.99 * movies))
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(activity, out=indptr[1:])
    taste = _Taste(rng, n_users, movies)
    customer_ids = (rng.choice(MAX_CUSTOMER_ID, n_users, replace=False) + 1).astype(np.int32)
    start_day = (_n_days() * (1.0 - rng.random(n_users) ** 1.5)).astype(np.int32)

    bar = tqdm(total=2 * n_ratings, unit="rating", unit_scale=True, disable=not progress)
    bar.set_description("sampling")
    movie_vec_t = np.ascontiguousarray(taste.movie_vec.T)
    watched = np.empty(n_ratings, np.int16)
    for lo in range(0, n_users, _USERS_PER_STEP):
        hi = min(lo + _USERS_PER_STEP, n_users)
        _sample_watched(
            lo,
            hi,
            indptr,
            taste.user_vec,
            movie_vec_t,
            taste.log_pop,
            TASTE_WEIGHT,
            PAIR_NOISE,
            NOISE_SHARE,
            key,
            watched,
        )
        bar.update(int(indptr[hi] - indptr[lo]))
    per_movie = np.bincount(watched, minlength=movies).astype(np.int64)
    min_count = min(MIN_MOVIE_RATINGS, n_ratings // movies, n_users)
    _ensure_min_ratings(indptr, watched, per_movie, min_count, key)

    user_of = np.repeat(np.arange(n_users, dtype=np.int32), activity)
    values, days = _rate(indptr, watched, taste, start_day, key)
    order = _movie_major(watched, per_movie)
    movie_start = np.zeros(movies + 1, np.int64)
    np.cumsum(per_movie, out=movie_start[1:])

    bar.set_description("writing")
    day_text = _day_table()
    for name, first, last in _file_ranges(movies):
        with (out / name).open("wb") as f:
            for m0, m1 in _write_chunks(movie_start, first - 1, last):
                buf = _format_block(m0, m1, movie_start, order, user_of, customer_ids, values, days, day_text)
                f.write(buf.data)
                bar.update(int(movie_start[m1] - movie_start[m0]))
    bar.close()

    n_probe = _write_probe(out / PROBE_FILE, order, movie_start, user_of, customer_ids, key)
    _write_titles(out / TITLES_FILE, rng)
    active = per_movie > 0
    return {
        "ratings": int(n_ratings),
        "users": int(n_users),
        "movies": int(active.sum()),
        "probe_pairs": int(n_probe),
        "files": [name for name, _, _ in RATING_FILES] + [TITLES_FILE, PROBE_FILE],
        "mean_rating": float(values.mean(dtype=np.float64)),
        "movie_ratings": {
            "min": int(per_movie[active].min()),
            "median": float(np.median(per_movie[active])),
            "max": int(per_movie.max()),
        },
        "user_ratings": {
            "min": int(activity.min()),
            "median": float(np.median(activity)),
            "mean": float(activity.mean()),
            "max": int(activity.max()),
        },
    }


def _file_ranges(movies: int) -> list[tuple[str, int, int]]:
    """(file, first id, last id) of each rating file: the real split, shrunk to `movies` ids."""
    shrink = movies / N_MOVIES
    return [(name, round((a - 1) * shrink) + 1, round(b * shrink)) for name, a, b in RATING_FILES]


class _Taste:
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


def _allocate(weights: np.ndarray, total: int, lo: int, hi: int) -> np.ndarray:
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


def _n_days() -> int:
    return (LAST_DAY - FIRST_DAY).days + 1


def _day_table() -> np.ndarray:
    """'YYYY-MM-DD' bytes of every day in the date range, one row per day."""
    text = "".join(str(FIRST_DAY + timedelta(days=i)) for i in range(_n_days()))
    return np.frombuffer(text.encode("ascii"), np.uint8).reshape(-1, 10)


@numba.njit(cache=True, inline="always")
def _mix(x: np.uint64) -> np.uint64:
    """splitmix64 finaliser: a well-mixed 64-bit hash of x."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _key(key: np.uint64, stream: int, i: int) -> np.uint64:
    return _mix(_mix(key + np.uint64(stream) * _GOLDEN) + np.uint64(i) * _GOLDEN)


@numba.njit(cache=True, inline="always")
def _uniform(key: np.uint64, i: int) -> float:
    """The i-th uniform in (0, 1) of the stream `key`."""
    h = _mix(key + np.uint64(i) * _GOLDEN)
    return (float(h >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, parallel=True)
def _sample_watched(
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
            k = _key(key, _PICK, u)
            n_noise = min(int(noise_share * n + _uniform(k, 0)), n)  # rounded at random
            weight[:] = pop_weight
            tries = _take(weight, block_cdf, seen, u + 1, movies, start, 0, n_noise, k, 1)
            key32 = np.uint32(_key(key, _NOISE, u) >> np.uint64(32))
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
        m = _draw(weight, block_cdf, _uniform(k, tries) * table_mass)
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
def _ensure_min_ratings(indptr, movies, per_movie, min_count, key):
    """Give every movie `min_count` ratings by swapping them for a random rating of a
    random user who has not rated it (keeps every user's count and the total, and
    takes from movies in proportion to their counts)."""
    n_users = indptr.shape[0] - 1
    k = _key(key, _FIX, 0)
    draw = 0
    for m in range(per_movie.shape[0]):
        budget = 1000 * n_users + 1000
        while per_movie[m] < min_count:
            if budget == 0:
                raise ValueError("could not give every movie its minimum number of ratings")
            budget -= 1
            u = min(int(_uniform(k, draw) * n_users), n_users - 1)
            start, n = indptr[u], indptr[u + 1] - indptr[u]
            victim = start + min(int(_uniform(k, draw + 1) * n), n - 1)
            draw += 2
            if per_movie[movies[victim]] <= min_count:
                continue
            if m in movies[start : start + n]:
                continue
            per_movie[movies[victim]] -= 1
            movies[victim] = m
            per_movie[m] += 1


def _rate(
    indptr: np.ndarray, movies: np.ndarray, taste: _Taste, start_day: np.ndarray, key: np.uint64
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
        _n_days(),
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
        kr = _key(key, _RATE, u)
        kd = _key(key, _DAY, u)
        first = start_day[u]
        for j in range(indptr[u], indptr[u + 1]):
            m = movies[j]
            affinity = 0.0
            for d in range(user_vec.shape[1]):
                affinity += user_vec[u, d] * movie_vec[m, d]
            i = j - indptr[u]
            normal = math.sqrt(-2.0 * math.log(_uniform(kr, 2 * i))) * math.cos(
                2.0 * math.pi * _uniform(kr, 2 * i + 1)
            )
            score[j] = user_bias[u] + movie_bias[m] + RATING_TASTE_WEIGHT * affinity + RATING_NOISE * normal
            days[j] = first + int(_uniform(kd, i) * (n_days - first))


@numba.njit(cache=True)
def _movie_major(movies, per_movie):
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


def _write_chunks(movie_start: np.ndarray, first: int, last: int) -> list[tuple[int, int]]:
    """Movie index ranges [m0, m1) of about _ROWS_PER_WRITE ratings each."""
    chunks, m0 = [], first
    while m0 < last:
        target = movie_start[m0] + _ROWS_PER_WRITE
        m1 = int(np.searchsorted(movie_start, target, side="right")) - 1
        m1 = min(max(m1, m0 + 1), last)
        chunks.append((m0, m1))
        m0 = m1
    return chunks


@numba.njit(cache=True, inline="always")
def _n_digits(x: int) -> int:
    n = 1
    while x >= 10:
        x //= 10
        n += 1
    return n


@numba.njit(cache=True, inline="always")
def _put_int(buf, at, x, width):
    for i in range(width - 1, -1, -1):
        buf[at + i] = 48 + x % 10
        x //= 10


@numba.njit(cache=True, parallel=True)
def _format_block(m0, m1, movie_start, order, users, customer_ids, ratings, days, day_text):
    """The text of movies [m0, m1): `MovieID:` then `CustomerID,Rating,YYYY-MM-DD` rows."""
    n = m1 - m0
    size = np.zeros(n + 1, np.int64)
    for i in numba.prange(n):
        m = m0 + i
        if movie_start[m + 1] > movie_start[m]:
            s = _n_digits(m + 1) + 2
            for p in range(movie_start[m], movie_start[m + 1]):
                s += _n_digits(customer_ids[users[order[p]]]) + 14
            size[i + 1] = s
    offset = np.cumsum(size)
    buf = np.empty(offset[n], np.uint8)
    for i in numba.prange(n):
        m = m0 + i
        if movie_start[m + 1] == movie_start[m]:
            continue
        at = offset[i]
        w = _n_digits(m + 1)
        _put_int(buf, at, m + 1, w)
        buf[at + w] = 58  # ':'
        buf[at + w + 1] = 10
        at += w + 2
        for p in range(movie_start[m], movie_start[m + 1]):
            j = order[p]
            cid = customer_ids[users[j]]
            w = _n_digits(cid)
            _put_int(buf, at, cid, w)
            at += w
            buf[at] = 44  # ','
            buf[at + 1] = 48 + ratings[j]
            buf[at + 2] = 44
            for c in range(10):
                buf[at + 3 + c] = day_text[days[j], c]
            buf[at + 13] = 10
            at += 14
    return buf


def _write_probe(
    path: Path,
    order: np.ndarray,
    movie_start: np.ndarray,
    users: np.ndarray,
    customer_ids: np.ndarray,
    key: np.uint64,
) -> int:
    """probe.txt: a random ~1.4% of the pairs, movies in the real file's text order."""
    chosen = _probe_mask(order.shape[0], key, PROBE_FRACTION)
    blocks = []
    for movie_id in sorted(range(1, len(movie_start)), key=str):
        lo, hi = movie_start[movie_id - 1], movie_start[movie_id]
        picked = order[lo:hi][chosen[lo:hi]]
        if picked.size:
            ids = customer_ids[users[picked]]
            blocks.append(f"{movie_id}:\n" + "\n".join(map(str, ids.tolist())))
    path.write_text("\n".join(blocks), encoding="ascii")
    return int(chosen.sum())


@numba.njit(cache=True, parallel=True)
def _probe_mask(n, key, fraction):
    k = _key(key, _PROBE, 0)
    mask = np.empty(n, np.bool_)
    for p in numba.prange(n):
        mask[p] = _uniform(k, p) < fraction
    return mask


_ADJECTIVES = [
    "Silent",
    "Broken",
    "Last",
    "Golden",
    "Hidden",
    "Lost",
    "Dark",
    "Wild",
    "Secret",
    "Final",
    "Crimson",
    "Endless",
    "Frozen",
    "Burning",
    "Quiet",
    "Distant",
    "Savage",
    "Little",
    "Eternal",
    "Midnight",
    "Electric",
    "Lonely",
    "Bitter",
    "Sweet",
]
_NOUNS = [
    "River",
    "Summer",
    "Kingdom",
    "Road",
    "Heart",
    "City",
    "Night",
    "Garden",
    "Empire",
    "Storm",
    "Island",
    "Mirror",
    "Promise",
    "Journey",
    "Shadow",
    "Harbor",
    "Winter",
    "Machine",
    "Dream",
    "Frontier",
    "Station",
    "Letter",
    "Witness",
    "Dance",
]
_N_COMMA_TITLES = 336
_N_QUOTE_TITLES = 7
_N_ACCENT_TITLES = 3
_N_NULL_YEARS = 7


def _write_titles(path: Path, rng: np.random.Generator) -> None:
    """movie_titles.csv like the real one: latin-1, no header, commas and quotes in titles."""
    special = rng.permutation(N_MOVIES)
    commas = set(special[:_N_COMMA_TITLES].tolist())
    quotes = set(special[_N_COMMA_TITLES : _N_COMMA_TITLES + _N_QUOTE_TITLES].tolist())
    accents = set(special[-_N_ACCENT_TITLES:].tolist())
    null_years = set(rng.choice(N_MOVIES, _N_NULL_YEARS, replace=False).tolist())
    years = np.clip(2005 - rng.exponential(10.0, N_MOVIES).astype(int), 1896, 2005)
    adjectives = rng.integers(0, len(_ADJECTIVES), N_MOVIES)
    nouns = rng.integers(0, len(_NOUNS), (N_MOVIES, 2))
    lines = []
    for m in range(N_MOVIES):
        a, n, n2 = _ADJECTIVES[adjectives[m]], _NOUNS[nouns[m, 0]], _NOUNS[nouns[m, 1]]
        if m in commas:
            title = f"{n}, {a} {n2}"
        elif m in quotes:
            title = f'The "{a}" {n}'
        elif m in accents:
            title = f"Café {n}"
        elif m % 5 == 0:
            title = f"{n} of the {a} {n2}"
        elif m % 7 == 0:
            title = f"{a} {n}: Season {1 + m % 6}"
        else:
            title = f"The {a} {n}"
        year = "NULL" if m in null_years else str(years[m])
        lines.append(f"{m + 1},{year},{title}\n")
    path.write_bytes("".join(lines).encode("latin-1"))
