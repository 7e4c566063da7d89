"""Index stage: ids, filters, holdouts and the train CSR on hand-made ingest outputs."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from wmf.config import IndexConfig
from wmf.data.interactions import load_all, load_holdout, load_seen, load_train
from wmf.errors import MissingInputError, WmfError
from wmf.stages.index.build import build_index

NONE = IndexConfig(holdout="none")


def write_ingest(
    directory: Path,
    rows: list[tuple[int, int, int, date]],
    titles: dict[int, str] | None = None,
    probe: list[tuple[int, int]] | None = None,
) -> Path:
    """An ingest output: rows are (movie_id, user_id, rating, date)."""
    directory.mkdir(parents=True, exist_ok=True)
    movie, user, rating, day = zip(*rows, strict=True) if rows else ([], [], [], [])
    pl.DataFrame(
        {"movie_id": movie, "user_id": user, "rating": rating, "date": day},
        schema={"movie_id": pl.Int32, "user_id": pl.Int32, "rating": pl.Int8, "date": pl.Date},
    ).write_parquet(directory / "ratings.parquet", compression="zstd")
    titles = titles if titles is not None else {m: f"Movie {m}" for m in sorted(set(movie))}
    pl.DataFrame(
        {
            "movie_id": list(titles),
            "year": [2000 + m % 5 for m in titles],
            "title": list(titles.values()),
        },
        schema={"movie_id": pl.Int32, "year": pl.Int16, "title": pl.String},
    ).write_parquet(directory / "movies.parquet")
    if probe is not None:
        pl.DataFrame(
            {"movie_id": [m for m, _ in probe], "user_id": [u for _, u in probe]},
            schema={"movie_id": pl.Int32, "user_id": pl.Int32},
        ).write_parquet(directory / "probe.parquet")
    return directory


def random_rows(seed: int, n_users: int = 60, n_movies: int = 40, density: float = 0.3):
    """Unique (movie, user) pairs with sparse, unordered ids and random dates."""
    rng = np.random.default_rng(seed)
    user_ids = rng.choice(np.arange(1, 10_000), n_users, replace=False)
    movie_ids = rng.choice(np.arange(1, 500), n_movies, replace=False)
    cells = np.argwhere(rng.random((n_movies, n_users)) < density)
    rng.shuffle(cells)
    start = date(2001, 1, 1)
    return [
        (
            int(movie_ids[m]),
            int(user_ids[u]),
            int(rng.integers(1, 6)),
            start + timedelta(days=int(rng.integers(0, 50))),
        )
        for m, u in cells
    ]


def build(tmp_path: Path, rows, config: IndexConfig = NONE, **files) -> tuple[Path, dict]:
    ingest = write_ingest(tmp_path / "ingest", rows, **files)
    out = tmp_path / f"index-{config.holdout}-{config.split_seed}"
    out.mkdir()
    return out, build_index(ingest, out, config, progress=False)


def pairs_by_id(out: Path) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """(user_id, movie_id) pairs of train and holdout, mapped back through the tables."""
    users = pl.read_parquet(out / "users.parquet").get_column("user_id").to_numpy()
    movies = pl.read_parquet(out / "movies.parquet").get_column("movie_id").to_numpy()
    train = load_train(out)
    rows = np.repeat(np.arange(train.n_users), np.diff(train.indptr))
    held_u, held_m = load_holdout(out)
    return (
        set(zip(users[rows].tolist(), movies[train.indices].tolist(), strict=True)),
        set(zip(users[held_u].tolist(), movies[held_m].tolist(), strict=True)),
    )


def interactions(rows, min_rating: int = 1) -> set[tuple[int, int]]:
    return {(u, m) for m, u, r, _ in rows if r >= min_rating}


D = date(2003, 5, 1)
TINY = [  # (movie_id, user_id, rating, date)
    (30, 7, 5, D),
    (10, 7, 1, D),
    (20, 900, 3, D),
    (10, 42, 4, D),
    (30, 42, 2, D),
    (20, 42, 5, D),
]


def test_tiny_index_matches_dense_reference(tmp_path):
    out, result = build(tmp_path, TINY, titles={10: "Ten", 20: "Twenty", 30: "Thirty", 99: "x"})
    users = pl.read_parquet(out / "users.parquet")
    movies = pl.read_parquet(out / "movies.parquet")
    assert users.to_dict(as_series=False) == {
        "user_idx": [0, 1, 2],
        "user_id": [7, 42, 900],
        "n_train": [2, 3, 1],
        "n_holdout": [0, 0, 0],
    }
    # movie 99 has a title but no rating: not indexed
    assert movies.to_dict(as_series=False) == {
        "movie_idx": [0, 1, 2],
        "movie_id": [10, 20, 30],
        "title": ["Ten", "Twenty", "Thirty"],
        "year": [2000, 2000, 2000],
        "n_train": [2, 2, 2],
    }
    assert dict(users.schema) == {
        "user_idx": pl.Int32,
        "user_id": pl.Int32,
        "n_train": pl.Int32,
        "n_holdout": pl.Int32,
    }
    assert movies.schema["year"] == pl.Int16 and movies.schema["movie_idx"] == pl.Int32
    train = load_train(out)
    dense = np.zeros(train.shape, dtype=np.int8)
    for r in range(train.n_users):
        lo, hi = train.indptr[r], train.indptr[r + 1]
        dense[r, train.indices[lo:hi]] = train.ratings[lo:hi]
    np.testing.assert_array_equal(dense, [[1, 0, 5], [4, 5, 2], [0, 3, 0]])
    assert train.indptr.dtype == np.int64 and train.indices.dtype == np.int32
    assert train.ratings.dtype == np.int8
    assert result["n_ratings_in"] == 6 and result["n_interactions"] == 6
    assert (result["n_users"], result["n_movies"], result["n_train"], result["n_holdout"]) == (
        3,
        3,
        6,
        0,
    )
    assert result["tables"] == {
        "users": {"path": "users.parquet", "rows": 3},
        "movies": {"path": "movies.parquet", "rows": 3},
        "holdout": {"path": "holdout.parquet", "rows": 0},
        "train": {"path": "train.npz", "rows": 6},
        "seen": {"path": "seen.npz", "rows": 6},
    }
    held_u, held_m = load_holdout(out)
    assert held_u.dtype == np.int32 and held_m.dtype == np.int32 and len(held_u) == 0


def id_pairs(out: Path, indptr: np.ndarray, indices: np.ndarray) -> set[tuple[int, int]]:
    """(user_id, movie_id) pairs of a user-major CSR of the index at `out`."""
    users = pl.read_parquet(out / "users.parquet").get_column("user_id").to_numpy()
    movies = pl.read_parquet(out / "movies.parquet").get_column("movie_id").to_numpy()
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return set(zip(users[rows].tolist(), movies[indices].tolist(), strict=True))


@pytest.mark.parametrize("min_rating", [1, 4])
def test_seen_lists_every_rated_movie_of_indexed_users(tmp_path, min_rating):
    rows = random_rows(11, n_users=70, n_movies=45)
    rows += [(*rows[0][:2], 1 if rows[0][2] > 1 else 5, rows[0][3])]  # a pair rated twice
    out, result = build(tmp_path, rows, IndexConfig(holdout="random", min_rating=min_rating))
    train_pairs, held_pairs = pairs_by_id(out)
    indptr, indices = load_seen(out)
    seen = id_pairs(out, indptr, indices)
    users = set(pl.read_parquet(out / "users.parquet").get_column("user_id").to_list())
    movies = set(pl.read_parquet(out / "movies.parquet").get_column("movie_id").to_list())
    rated = {(u, m) for m, u, _, _ in rows if u in users and m in movies}
    assert seen == rated and len(indices) == len(rated) == result["n_seen"]
    assert train_pairs | held_pairs <= seen and held_pairs
    if min_rating > 1:
        assert seen - train_pairs - held_pairs, "ratings below min_rating must be seen too"
    for r in range(len(indptr) - 1):
        assert (np.diff(indices[indptr[r] : indptr[r + 1]]) > 0).all()


def test_load_all_is_train_and_holdout_with_their_ratings(tmp_path):
    rows = random_rows(12, n_users=50, n_movies=30)
    out, _ = build(tmp_path, rows, IndexConfig(holdout="random"))
    everything, train = load_all(out), load_train(out)
    train_pairs, held_pairs = pairs_by_id(out)
    assert id_pairs(out, everything.indptr, everything.indices) == train_pairs | held_pairs
    assert everything.shape == train.shape and everything.nnz == len(train_pairs) + len(held_pairs)
    users = pl.read_parquet(out / "users.parquet").get_column("user_id").to_numpy()
    movies = pl.read_parquet(out / "movies.parquet").get_column("movie_id").to_numpy()
    rating = {(u, m): r for m, u, r, _ in rows}
    owner = np.repeat(np.arange(everything.n_users), np.diff(everything.indptr))
    got = {
        (int(users[u]), int(movies[m])): int(r)
        for u, m, r in zip(owner, everything.indices, everything.ratings, strict=True)
    }
    assert got == {pair: rating[pair] for pair in got}
    for r in range(everything.n_users):
        assert (np.diff(everything.indices[everything.indptr[r] : everything.indptr[r + 1]]) > 0).all()


def test_to_torch_round_trip(tmp_path):
    import torch

    out, _ = build(tmp_path, TINY)
    train = load_train(out)
    ones = train.to_torch("cpu")
    assert ones.layout == torch.sparse_csr and ones.dtype == torch.float32
    assert tuple(ones.shape) == train.shape
    np.testing.assert_array_equal(ones.to_dense().numpy(), [[1, 0, 1], [1, 1, 1], [0, 1, 0]])
    values = train.to_torch("cpu", values=True).to_dense().numpy()
    np.testing.assert_array_equal(values, [[1, 0, 5], [4, 5, 2], [0, 3, 0]])


def test_movie_without_title_is_indexed_with_null_title(tmp_path):
    out, _ = build(tmp_path, TINY, titles={10: "Ten", 30: "Thirty"})
    movies = pl.read_parquet(out / "movies.parquet")
    assert movies.get_column("movie_id").to_list() == [10, 20, 30]
    assert movies.get_column("title").to_list() == ["Ten", None, "Thirty"]
    assert movies.get_column("year").null_count() == 1


def test_min_rating_keeps_only_high_ratings_and_drops_emptied_ids(tmp_path):
    out, result = build(tmp_path, TINY, dataclasses.replace(NONE, min_rating=4))
    train, _ = pairs_by_id(out)
    assert train == {(7, 30), (42, 10), (42, 20)}
    # user 900 and nothing else disappear; movie 20 stays via user 42
    assert pl.read_parquet(out / "users.parquet").get_column("user_id").to_list() == [7, 42]
    assert result["n_interactions"] == 3 and result["n_below_min_rating"] == 3
    assert load_train(out).ratings.min() >= 4


def test_min_counts_iterate_to_a_fixed_point(tmp_path):
    rows = [
        # users 1..3 watch movies 1 and 2; user 4 watches 2 and 3; movie 3 only by user 4
        *[(m, u, 3, D) for u in (1, 2, 3) for m in (1, 2)],
        (2, 4, 3, D),
        (3, 4, 3, D),
    ]
    config = dataclasses.replace(NONE, min_user_ratings=2, min_movie_ratings=2)
    out, result = build(tmp_path, rows, config)
    # round 1 drops movie 3 (1 rating); user 4 then has 1 rating and goes in round 2
    train, _ = pairs_by_id(out)
    assert train == {(u, m) for u in (1, 2, 3) for m in (1, 2)}
    assert result["filter_rounds"] == 2
    assert (result["n_users"], result["n_movies"]) == (3, 2)
    users = pl.read_parquet(out / "users.parquet")
    assert users.get_column("user_idx").to_list() == [0, 1, 2]


def test_filters_hold_on_the_result(tmp_path):
    rows = random_rows(3, density=0.12)
    config = dataclasses.replace(NONE, min_user_ratings=5, min_movie_ratings=4)
    out, result = build(tmp_path, rows, config)
    train = load_train(out)
    assert np.diff(train.indptr).min() >= 5
    assert np.bincount(train.indices, minlength=train.n_movies).min() >= 4
    assert result["n_train"] < len(rows)


def test_duplicate_pairs_collapse_to_latest_date_and_highest_rating(tmp_path):
    rows = [*TINY, (10, 7, 3, D + timedelta(days=3))]
    out, result = build(tmp_path, rows, IndexConfig(holdout="temporal", holdout_min_user_ratings=2))
    assert result["n_duplicates"] == 1 and result["n_interactions"] == 6
    held_u, held_m = load_holdout(out)
    # user 7's duplicate of movie 10 carries the latest date, so it is the one held out
    assert (0, 0) in set(zip(held_u.tolist(), held_m.tolist(), strict=True))


@pytest.mark.parametrize("holdout", ["random", "temporal"])
def test_holdout_fraction_per_user_and_partition(tmp_path, holdout):
    rows = random_rows(1)
    config = IndexConfig(holdout=holdout, holdout_fraction=0.25, holdout_min_user_ratings=11)
    out, result = build(tmp_path, rows, config)
    train, held = pairs_by_id(out)
    assert not train & held
    assert train | held == interactions(rows)
    users = pl.read_parquet(out / "users.parquet")
    n = users.get_column("n_train").to_numpy() + users.get_column("n_holdout").to_numpy()
    expected = np.where(n >= 11, np.clip(np.floor(0.25 * n + 0.5), 1, n - 1), 0)
    np.testing.assert_array_equal(users.get_column("n_holdout").to_numpy(), expected)
    assert (n < 11).any() and (n >= 11).any()
    assert result["n_holdout"] == len(held) == expected.sum()
    held_u, held_m = load_holdout(out)
    order = np.lexsort((held_m, held_u))
    np.testing.assert_array_equal(order, np.arange(len(held_u)))


def test_small_users_keep_one_and_hold_out_one(tmp_path):
    rows = [(m, 5, 4, D) for m in (1, 2)] + [(m, 6, 4, D) for m in (1, 2, 3)]
    config = IndexConfig(holdout="random", holdout_fraction=0.01, holdout_min_user_ratings=1)
    out, _ = build(tmp_path, rows, config)
    users = pl.read_parquet(out / "users.parquet")
    assert users.get_column("n_holdout").to_list() == [1, 1]
    config = IndexConfig(holdout="random", holdout_fraction=0.99, holdout_min_user_ratings=1)
    out, _ = build(tmp_path / "high", rows, config)
    assert pl.read_parquet(out / "users.parquet").get_column("n_train").to_list() == [1, 1]


def test_temporal_holds_out_the_latest_dates(tmp_path):
    rows = random_rows(2)
    out, _ = build(tmp_path, rows, IndexConfig(holdout="temporal", holdout_fraction=0.3))
    train, held = pairs_by_id(out)
    when = {(u, m): d for m, u, _, d in rows}
    for user in {u for u, _ in held}:
        latest_kept = max(when[p] for p in train if p[0] == user)
        earliest_held = min(when[p] for p in held if p[0] == user)
        assert earliest_held >= latest_kept


def test_temporal_ties_break_by_movie(tmp_path):
    rows = [(m, 1, 3, D) for m in (5, 9, 2, 7)]
    config = IndexConfig(holdout="temporal", holdout_fraction=0.5, holdout_min_user_ratings=2)
    out, _ = build(tmp_path, rows, config)
    assert pairs_by_id(out)[1] == {(1, 7), (1, 9)}


def test_random_split_is_deterministic_per_seed(tmp_path):
    rows = random_rows(4)
    config = IndexConfig(holdout="random", split_seed=11)
    out_a = build(tmp_path / "a", rows, config)[0]
    # the same interactions in another row order give the same files
    out_b = build(tmp_path / "b", sorted(rows), config)[0]
    out_c = build(tmp_path / "c", rows, dataclasses.replace(config, split_seed=12))[0]
    for name in ("users.parquet", "movies.parquet", "holdout.parquet"):
        assert pl.read_parquet(out_a / name).equals(pl.read_parquet(out_b / name))
    a, b = load_train(out_a), load_train(out_b)
    for array in ("indptr", "indices", "ratings"):
        np.testing.assert_array_equal(getattr(a, array), getattr(b, array))
    assert pairs_by_id(out_a)[0] != pairs_by_id(out_c)[0]
    assert load_train(out_c).nnz == a.nnz


def test_random_split_is_pinned(tmp_path):
    """The split hash is our own splitmix64: a library upgrade must not move the holdout."""
    rows = [(m, 3, 4, D) for m in range(1, 11)]
    out, _ = build(tmp_path, rows, IndexConfig(holdout="random", holdout_fraction=0.3, split_seed=0))
    assert pairs_by_id(out)[1] == {(3, 1), (3, 7), (3, 10)}


def test_probe_holds_out_listed_interacting_pairs(tmp_path):
    probe = [(20, 42), (30, 7), (10, 900), (55, 1)]  # the last two are not interactions
    out, result = build(tmp_path, TINY, IndexConfig(holdout="probe"), probe=probe)
    train, held = pairs_by_id(out)
    assert held == {(42, 20), (7, 30)}
    assert train == interactions(TINY) - held
    assert result["n_holdout"] == 2


def test_probe_without_probe_file_fails_clearly(tmp_path):
    with pytest.raises(MissingInputError, match=r"probe\.parquet"):
        build(tmp_path, TINY, IndexConfig(holdout="probe"))


def test_missing_ratings_and_empty_result_fail_clearly(tmp_path):
    with pytest.raises(MissingInputError, match="ingest"):
        build_index(tmp_path, tmp_path / "out", NONE, progress=False)
    with pytest.raises(WmfError, match="no interactions left"):
        build(tmp_path, TINY, dataclasses.replace(NONE, min_user_ratings=10))


def test_rows_in_movie_order_give_the_same_index_as_shuffled_ones(tmp_path):
    """The ingest's movie-major order takes a shortcut in the sort; the output must not change."""
    rows = random_rows(8, n_users=70, n_movies=45)
    by_movie = sorted(rows, key=lambda r: r[0])  # movie-major, users unordered within a movie
    config = IndexConfig(holdout="random", split_seed=3)
    shuffled, _ = build(tmp_path / "shuffled", rows, config)
    ordered, _ = build(tmp_path / "ordered", by_movie, config)
    for name in ("users.parquet", "movies.parquet", "holdout.parquet"):
        assert pl.read_parquet(shuffled / name).equals(pl.read_parquet(ordered / name))
    for name in ("train.npz", "seen.npz"):
        a, b = np.load(shuffled / name), np.load(ordered / name)
        for array in a.files:
            np.testing.assert_array_equal(a[array], b[array])


def index_digest(index: Path) -> str:
    """One hash of every array and column an index output holds."""
    h = hashlib.blake2b(digest_size=16)
    for name in ("train.npz", "seen.npz"):
        arrays = np.load(index / name)
        for key in sorted(arrays.files):
            h.update(np.ascontiguousarray(arrays[key]).tobytes())
    for name in ("holdout.parquet", "users.parquet", "movies.parquet"):
        for column in pl.read_parquet(index / name).get_columns():
            h.update(column.cast(pl.String).str.join("|").item().encode())
    return h.hexdigest()


def test_index_output_is_pinned(tiny_index):
    """The index of a fixed generated set, byte for byte, as the code before the parallel sort,
    the lookup-table ids and the one-pass split made it: speed work must not move a pair."""
    assert index_digest(tiny_index) == "3905804da741ef457cb8b2ea2fc86ff7"


def test_a_negative_id_names_the_file_and_the_column(tmp_path):
    with pytest.raises(WmfError, match=r"ratings\.parquet: column user_id holds a negative id, -4"):
        build(tmp_path, [*TINY, (10, -4, 3, D)])


def test_csr_is_valid_on_random_data(tmp_path):
    rows = random_rows(5, n_users=80, n_movies=50)
    out, _ = build(tmp_path, rows, IndexConfig(holdout="random"))
    train = load_train(out)
    assert train.indptr[0] == 0 and train.indptr[-1] == train.nnz == len(train.ratings)
    assert len(train.indptr) == train.n_users + 1
    assert (np.diff(train.indptr) >= 0).all()
    for r in range(train.n_users):
        row = train.indices[train.indptr[r] : train.indptr[r + 1]]
        assert (np.diff(row) > 0).all()
    assert train.indices.min() >= 0 and train.indices.max() < train.n_movies
    movies = pl.read_parquet(out / "movies.parquet")
    np.testing.assert_array_equal(
        movies.get_column("n_train").to_numpy(), np.bincount(train.indices, minlength=50)
    )


def test_real_ratings_sample(tmp_path, sample_dir):
    ratings = pl.read_csv(sample_dir / "netflix-user-ratings-10k.csv", try_parse_dates=True).select(
        pl.col("MovieID").cast(pl.Int32).alias("movie_id"),
        pl.col("UserID").cast(pl.Int32).alias("user_id"),
        pl.col("Rating").cast(pl.Int8).alias("rating"),
        pl.col("Date").cast(pl.Date).alias("date"),
    )
    ingest = tmp_path / "ingest"
    ingest.mkdir()
    ratings.write_parquet(ingest / "ratings.parquet")
    out = tmp_path / "index"
    out.mkdir()
    result = build_index(ingest, out, IndexConfig(holdout="none"), progress=False)
    assert (result["n_users"], result["n_movies"], result["n_train"]) == (9_687, 3_451, 10_000)
    # no movies.parquet at all: every indexed movie gets a null title
    assert pl.read_parquet(out / "movies.parquet").get_column("title").null_count() == 3_451
    high = tmp_path / "high"
    high.mkdir()
    result = build_index(ingest, high, IndexConfig(holdout="none", min_rating=4), progress=False)
    assert result["n_train"] == int((ratings.get_column("rating") >= 4).sum())
