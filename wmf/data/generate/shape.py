"""The generator's fixed numbers: the real set's shape and the model's calibrated parameters."""

from __future__ import annotations

from datetime import date

from wmf.layout import Raw

FULL_USERS = 480_189
FULL_RATINGS = 100_480_507
N_MOVIES = 17_770
MAX_CUSTOMER_ID = 2_649_429
RATING_FILES = (
    (Raw.KAGGLE_RATINGS.format(1), 1, 4499),
    (Raw.KAGGLE_RATINGS.format(2), 4500, 9210),
    (Raw.KAGGLE_RATINGS.format(3), 9211, 13367),
    (Raw.KAGGLE_RATINGS.format(4), 13368, 17770),
)
TITLES_FILE = Raw.TITLES[0]
PROBE_FILE = Raw.PROBE
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
PICK, RATE, DAY, PROBE_STREAM, FIX, NOISE = 1, 2, 3, 4, 5, 6


def n_days() -> int:
    return (LAST_DAY - FIRST_DAY).days + 1
