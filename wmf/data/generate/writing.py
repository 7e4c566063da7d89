"""The generated data as the Kaggle layout's text files: ratings blocks, probe.txt, movie_titles."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numba
import numpy as np

from wmf.data.generate.shape import FIRST_DAY, N_MOVIES, PROBE_FRACTION, PROBE_STREAM, RATING_FILES, n_days
from wmf.data.hashing import stream_key, uniform

_ROWS_PER_WRITE = 4_000_000


def day_table() -> np.ndarray:
    """'YYYY-MM-DD' bytes of every day in the date range, one row per day."""
    text = "".join(str(FIRST_DAY + timedelta(days=i)) for i in range(n_days()))
    return np.frombuffer(text.encode("ascii"), np.uint8).reshape(-1, 10)


def file_ranges(movies: int) -> list[tuple[str, int, int]]:
    """(file, first id, last id) of each rating file: the real split, shrunk to `movies` ids."""
    shrink = movies / N_MOVIES
    return [(name, round((a - 1) * shrink) + 1, round(b * shrink)) for name, a, b in RATING_FILES]


def write_chunks(movie_start: np.ndarray, first: int, last: int) -> list[tuple[int, int]]:
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
def format_block(m0, m1, movie_start, order, users, customer_ids, ratings, days, day_text):
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


def write_probe(
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
    k = stream_key(key, PROBE_STREAM, 0)
    mask = np.empty(n, np.bool_)
    for p in numba.prange(n):
        mask[p] = uniform(k, p) < fraction
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


def write_titles(path: Path, rng: np.random.Generator) -> None:
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
