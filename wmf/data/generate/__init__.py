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

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from wmf.data.generate.sampling import Taste, allocate, ensure_min_ratings, movie_major, rate, sample_watched
from wmf.data.generate.shape import (
    FULL_RATINGS,
    FULL_USERS,
    MAX_CUSTOMER_ID,
    MIN_MOVIE_RATINGS,
    N_MOVIES,
    NOISE_SHARE,
    PAIR_NOISE,
    PROBE_FILE,
    RATING_FILES,
    TASTE_WEIGHT,
    TITLES_FILE,
    USER_ACTIVITY_SIGMA,
    n_days,
)
from wmf.data.generate.writing import (
    day_table,
    file_ranges,
    format_block,
    write_chunks,
    write_probe,
    write_titles,
)
from wmf.data.hashing import GOLDEN, mix64

_USERS_PER_STEP = 32_768


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
    key = np.uint64(mix64(np.uint64((seed * int(GOLDEN) + 0x5EED) % 2**64)))

    activity = allocate(rng.lognormal(0.0, USER_ACTIVITY_SIGMA, n_users), n_ratings, 1, int(0.99 * movies))
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(activity, out=indptr[1:])
    taste = Taste(rng, n_users, movies)
    customer_ids = (rng.choice(MAX_CUSTOMER_ID, n_users, replace=False) + 1).astype(np.int32)
    start_day = (n_days() * (1.0 - rng.random(n_users) ** 1.5)).astype(np.int32)

    bar = tqdm(total=2 * n_ratings, unit="rating", unit_scale=True, disable=not progress)
    bar.set_description("sampling")
    movie_vec_t = np.ascontiguousarray(taste.movie_vec.T)
    watched = np.empty(n_ratings, np.int16)
    for lo in range(0, n_users, _USERS_PER_STEP):
        hi = min(lo + _USERS_PER_STEP, n_users)
        sample_watched(
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
    ensure_min_ratings(indptr, watched, per_movie, min_count, key)

    user_of = np.repeat(np.arange(n_users, dtype=np.int32), activity)
    values, days = rate(indptr, watched, taste, start_day, key)
    order = movie_major(watched, per_movie)
    movie_start = np.zeros(movies + 1, np.int64)
    np.cumsum(per_movie, out=movie_start[1:])

    bar.set_description("writing")
    day_text = day_table()
    for name, first, last in file_ranges(movies):
        with (out / name).open("wb") as f:
            for m0, m1 in write_chunks(movie_start, first - 1, last):
                buf = format_block(m0, m1, movie_start, order, user_of, customer_ids, values, days, day_text)
                f.write(buf.data)
                bar.update(int(movie_start[m1] - movie_start[m0]))
    bar.close()

    n_probe = write_probe(out / PROBE_FILE, order, movie_start, user_of, customer_ids, key)
    write_titles(out / TITLES_FILE, rng)
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
