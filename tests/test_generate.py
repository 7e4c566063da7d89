"""The synthetic Netflix data: the Kaggle layout, exact shape, and learnable taste."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from wmf.generate import (
    FULL_RATINGS,
    FULL_USERS,
    MAX_CUSTOMER_ID,
    N_MOVIES,
    PROBE_FILE,
    RATING_FILES,
    TITLES_FILE,
    generate,
)

SCALE = 0.002
ROW = re.compile(r"^(\d+),([1-5]),(\d{4}-\d{2}-\d{2})$")
HEADER = re.compile(r"^(\d+):$")


def parse_ratings(path: Path) -> list[tuple[int, int, int, str]]:
    """(movie, customer, rating, date) of every row; asserts every line's grammar."""
    text = path.read_text(encoding="ascii")
    assert text == "" or text.endswith("\n")
    rows, movie, block_size = [], None, 0
    for line in text.splitlines():
        if header := HEADER.match(line):
            assert movie is None or block_size > 0, f"empty block for movie {movie}"
            movie, block_size = int(header.group(1)), 0
            continue
        row = ROW.match(line)
        assert row and movie is not None, line
        rows.append((movie, int(row.group(1)), int(row.group(2)), row.group(3)))
        block_size += 1
    assert movie is None or block_size > 0
    return rows


def parse_probe(path: Path) -> tuple[list[int], list[tuple[int, int]]]:
    """Movie order and (movie, customer) pairs of probe.txt."""
    order, pairs, movie = [], [], None
    for line in path.read_text(encoding="ascii").split("\n"):
        if line.endswith(":"):
            movie = int(line[:-1])
            order.append(movie)
        else:
            pairs.append((movie, int(line)))
    return order, pairs


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("raw")
    return out, generate(out, scale=SCALE, seed=0, progress=False)


@pytest.fixture(scope="module")
def rows(raw: tuple[Path, dict]) -> np.ndarray:
    """All ratings as an array of (movie, customer, rating, day ordinal)."""
    out, _ = raw
    table = []
    for name, first, last in RATING_FILES:
        file_rows = parse_ratings(out / name)
        movies = [r[0] for r in file_rows]
        assert movies == sorted(movies)
        assert set(movies) == set(range(first, last + 1))
        table += [(m, c, r, date.fromisoformat(d).toordinal()) for m, c, r, d in file_rows]
    return np.array(table, dtype=np.int64)


def test_counts_are_exact_and_proportional_to_scale(raw: tuple[Path, dict], rows: np.ndarray):
    _, summary = raw
    assert len(rows) == summary["ratings"] == round(FULL_RATINGS * SCALE)
    assert len(np.unique(rows[:, 1])) == summary["users"] == round(FULL_USERS * SCALE)
    assert len(np.unique(rows[:, 0])) == summary["movies"] == N_MOVIES
    assert summary["files"] == [n for n, _, _ in RATING_FILES] + [TITLES_FILE, PROBE_FILE]


def test_values_in_range_and_no_duplicate_pairs(rows: np.ndarray):
    movie, customer, rating, day = rows.T
    assert len(np.unique(movie * (MAX_CUSTOMER_ID + 1) + customer)) == len(rows)
    assert customer.min() >= 1 and customer.max() <= MAX_CUSTOMER_ID
    assert set(np.unique(rating)) == {1, 2, 3, 4, 5}
    assert 3.5 < rating.mean() < 3.7
    assert day.min() >= date(1999, 11, 11).toordinal()
    assert day.max() <= date(2005, 12, 31).toordinal()


def test_heavy_tailed_popularity_and_activity(raw: tuple[Path, dict], rows: np.ndarray):
    per_movie = np.bincount(rows[:, 0])[1:]
    per_user = np.unique(rows[:, 1], return_counts=True)[1]
    assert per_movie.min() >= 3
    assert per_movie.max() > 40 * np.median(per_movie)
    assert np.median(per_user) < 0.7 * per_user.mean()
    _, summary = raw
    assert summary["movie_ratings"]["max"] == per_movie.max()
    assert summary["user_ratings"]["median"] == np.median(per_user)


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path):
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(tmp_path / name, scale=0.0005, seed=seed, progress=False)
        runs[name] = {p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())}
    assert runs["a"] == runs["b"]
    assert runs["a"]["combined_data_1.txt"] != runs["c"]["combined_data_1.txt"]


def test_titles_are_latin1_with_commas_quotes_and_null_years(raw: tuple[Path, dict]):
    data = (raw[0] / TITLES_FILE).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    records = [line.split(",", 2) for line in data.decode("latin-1").splitlines()]
    assert [int(r[0]) for r in records] == list(range(1, N_MOVIES + 1))
    years = [r[1] for r in records]
    assert years.count("NULL") == 7
    assert all(1896 <= int(y) <= 2005 for y in years if y != "NULL")
    titles = [r[2] for r in records]
    assert sum("," in t for t in titles) > 100
    assert any('"' in t for t in titles)
    assert any("é" in t for t in titles)


def test_probe_pairs_are_a_sample_of_the_ratings(raw: tuple[Path, dict], rows: np.ndarray):
    out, summary = raw
    assert not (out / PROBE_FILE).read_bytes().endswith(b"\n")
    order, pairs = parse_probe(out / PROBE_FILE)
    assert order == sorted(order, key=str)
    assert len(pairs) == len(set(pairs)) == summary["probe_pairs"]
    assert set(pairs) <= {(int(m), int(c)) for m, c in rows[:, :2]}
    assert 0.010 < len(pairs) / len(rows) < 0.018


def test_taste_structure_beats_popularity(rows: np.ndarray):
    """A rank-16 factorization (PureSVD) must find held-out movies far better than popularity."""
    _, user = np.unique(rows[:, 1], return_inverse=True)
    movie = rows[:, 0] - 1
    held = np.random.default_rng(0).random(len(rows)) < 0.2
    shape = (user.max() + 1, N_MOVIES)
    train = sp.csr_matrix((np.ones((~held).sum()), (user[~held], movie[~held])), shape=shape)
    test = sp.csr_matrix((np.ones(held.sum()), (user[held], movie[held])), shape=shape).toarray()
    left, sigma, right = svds(train, k=16, random_state=0)
    factorization = (left * sigma) @ right
    popularity = np.broadcast_to(train.sum(axis=0).A1, shape).copy()

    def recall_at_20(scores: np.ndarray) -> float:
        scores[train.nonzero()] = -np.inf
        top = np.argpartition(-scores, 20, axis=1)[:, :20]
        hits = np.take_along_axis(test, top, axis=1).sum(axis=1)
        n_test = test.sum(axis=1)
        has = n_test > 0
        return float((hits[has] / np.minimum(20, n_test[has])).mean())

    assert recall_at_20(factorization) > 1.5 * recall_at_20(popularity)


def test_tiny_scale_writes_no_empty_block(tmp_path: Path):
    summary = generate(tmp_path, scale=0.0001, seed=0, progress=False)
    table = [r for name, _, _ in RATING_FILES for r in parse_ratings(tmp_path / name)]
    assert len(table) == summary["ratings"] == round(FULL_RATINGS * 0.0001)
    assert len({r[0] for r in table}) == summary["movies"] < N_MOVIES
    assert len({r[1] for r in table}) == summary["users"]


def test_rejects_non_positive_scale(tmp_path: Path):
    with pytest.raises(ValueError, match="scale"):
        generate(tmp_path, scale=0)


def test_grammar_matches_the_real_sample(sample_dir: Path):
    """The line grammar asserted above is the real file's grammar."""
    rows = parse_ratings(sample_dir / "combined_data_1.movies_1-20.txt")
    assert len(rows) == 42_813
