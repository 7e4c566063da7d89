"""Export stage on a tiny hand-made index and model: schemas, metadata, contents, readers."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.numpy import save_file

import wmf
from wmf.config import ExportConfig
from wmf.stages.export import schema
from wmf.stages.export.tables import export

USER_IDS = [6, 42, 2649429]
MOVIE_IDS = [1, 8, 30, 17770]
TITLES = ["Dinosaur Planet", "What the #$*! Do We Know!?", "Something's Gotta Give", "Rúsalka"]
YEARS = [2003, None, 2003, 1962]
TRAIN = [[0, 2], [0, 1, 2], []]  # user 42 has one unseen movie
HOLDOUT = [(0, 3), (2, 1)]
BELOW_MIN_RATING = [(2, 2)]  # rated, but under the index's min_rating: neither trained nor held out


def seen_rows(holdout: list[tuple[int, int]]) -> list[list[int]]:
    """Every movie each user rated: trained, held out or below min_rating."""
    return [
        sorted({*t, *(m for u, m in [*holdout, *BELOW_MIN_RATING] if u == i)}) for i, t in enumerate(TRAIN)
    ]


def write_index(directory: Path, holdout: list[tuple[int, int]]) -> None:
    directory.mkdir()
    n_train = [len(s) for s in TRAIN]
    n_holdout = [sum(u == i for u, _ in holdout) for i in range(len(USER_IDS))]
    pl.DataFrame(
        {"user_idx": range(3), "user_id": USER_IDS, "n_train": n_train, "n_holdout": n_holdout},
        schema={"user_idx": pl.Int32, "user_id": pl.Int32, "n_train": pl.Int32, "n_holdout": pl.Int32},
    ).write_parquet(directory / "users.parquet")
    counts = np.bincount(np.concatenate([np.array(s, dtype=int) for s in TRAIN]), minlength=4)
    pl.DataFrame(
        {"movie_idx": range(4), "movie_id": MOVIE_IDS, "title": TITLES, "year": YEARS, "n_train": counts},
        schema={
            "movie_idx": pl.Int32,
            "movie_id": pl.Int32,
            "title": pl.String,
            "year": pl.Int16,
            "n_train": pl.Int32,
        },
    ).write_parquet(directory / "movies.parquet")
    indices = np.concatenate([np.array(s, dtype=np.int32) for s in TRAIN])
    np.savez(
        directory / "train.npz",
        indptr=np.cumsum([0, *n_train]).astype(np.int64),
        indices=indices,
        ratings=np.full(len(indices), 4, np.int8),
        shape=np.array([3, 4], np.int64),
    )
    pl.DataFrame(
        {
            "user_idx": [u for u, _ in holdout],
            "movie_idx": [m for _, m in holdout],
            "rating": [4] * len(holdout),
        },
        schema={"user_idx": pl.Int32, "movie_idx": pl.Int32, "rating": pl.Int8},
    ).write_parquet(directory / "holdout.parquet")
    seen = seen_rows(holdout)
    np.savez(
        directory / "seen.npz",
        indptr=np.cumsum([0, *map(len, seen)]).astype(np.int64),
        indices=np.concatenate([np.array(s, dtype=np.int32) for s in seen]),
    )


USER_FACTORS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
MOVIE_FACTORS = np.array([[3.0, 0.0], [2.0, 0.0], [0.0, 2.0], [1.0, 1.0]], np.float32)


@pytest.fixture
def stage_inputs(tmp_path: Path) -> tuple[Path, Path]:
    write_index(tmp_path / "index", HOLDOUT)
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    save_file({"user_factors": USER_FACTORS, "movie_factors": MOVIE_FACTORS}, train_dir / "model.safetensors")
    (train_dir / "config.json").write_text(json.dumps({"config": {"factors": 2, "alpha": 0.0}}))
    return tmp_path / "index", train_dir


@pytest.fixture
def exported(stage_inputs, tmp_path: Path) -> tuple[Path, dict]:
    out = tmp_path / "out"
    config = ExportConfig(top_k=3, similar_k=2, batch_users=2)
    provenance = {"key": "run-123", "code_hash": "c0de"}
    return out, export(*stage_inputs, out, config, progress=False, provenance=provenance)


def test_recommendations_exclude_every_rated_movie_and_follow_scores(exported):
    out, summary = exported
    recs = pl.read_parquet(out / "recommendations.parquet")
    assert recs.schema == pl.Schema(
        {
            "user_id": pl.Int32,
            "rank": pl.Int16,
            "movie_id": pl.Int32,
            "score": pl.Float32,
            "title": pl.String,
            "year": pl.Int16,
        }
    )
    by_user = {u: g.sort("rank") for (u,), g in recs.group_by("user_id")}
    assert sorted(by_user) == USER_IDS  # every trained user appears
    # user 6 = [1, 0] trained on movies 1 and 30 and held out 17770 (its best unseen
    # but one): only 8 (score 2) is left
    assert by_user[6]["movie_id"].to_list() == [8]
    assert by_user[6]["score"].to_list() == [2.0]
    assert by_user[42]["movie_id"].to_list() == [17770]
    # user 2649429 = [1, 1]: scores 3, 2, 2, 2 for 1, 8, 30, 17770; 8 is held out and 30
    # rated below min_rating: 1, then 17770
    assert by_user[2649429]["movie_id"].to_list() == [1, 17770]
    assert by_user[2649429]["rank"].to_list() == [1, 2]
    assert recs["title"].to_list()[:2] == [TITLES[1], TITLES[3]]
    assert (
        recs.filter(pl.col("movie_id") == 8)["year"].null_count()
        == recs.filter(pl.col("movie_id") == 8).height
    )
    assert recs.select("user_id", "rank").equals(recs.select("user_id", "rank").sort("user_id", "rank"))
    assert summary["tables"]["recommendations"] == {"path": "recommendations.parquet", "rows": 4}


def test_embeddings_and_similar_movies(exported):
    out, summary = exported
    users = pq.read_table(out / "user_embeddings.parquet")
    assert users.schema.field("embedding").type == pa.list_(pa.float32(), 2)
    assert users["user_id"].to_pylist() == USER_IDS
    np.testing.assert_array_equal(np.stack(users["embedding"].to_numpy(zero_copy_only=False)), USER_FACTORS)
    movies = pl.read_parquet(out / "movie_embeddings.parquet")
    assert movies.columns == ["movie_id", "title", "year", "embedding", "n_train"]
    assert movies["title"].to_list() == TITLES and movies["n_train"].to_list() == [2, 1, 2, 0]
    similar = pl.read_parquet(out / "similar_movies.parquet")
    assert similar.schema["rank"] == pl.Int16 and similar.schema["score"] == pl.Float32
    assert (similar["movie_id"] != similar["similar_movie_id"]).all()
    first = similar.filter(pl.col("movie_id") == 1)
    assert first["similar_movie_id"].to_list() == [8, 17770]  # cosine 1, then 1/sqrt(2)
    assert first["score"].to_list() == pytest.approx([1.0, 2**-0.5])
    assert summary["tables"]["similar_movies"]["rows"] == 8


def test_every_table_carries_provenance_metadata(exported):
    out, summary = exported
    for name, table in summary["tables"].items():
        metadata = pq.read_schema(out / table["path"]).metadata
        assert {k.decode() for k in metadata} == set(schema.PROVENANCE), name
        assert metadata[b"wmf.run_id"] == b"run-123", name
        assert metadata[b"wmf.package_version"] == wmf.__version__.encode()
        assert metadata[b"wmf.code_hash"] == b"c0de"
        assert json.loads(metadata[b"wmf.model_params"]) == {"config": {"factors": 2, "alpha": 0.0}}
        assert metadata[b"wmf.created_at"].startswith(b"20")
        assert pq.ParquetFile(out / table["path"]).metadata.row_group(0).column(0).compression == "ZSTD"


def test_every_table_has_the_documented_schema(exported):
    """The files' columns are `schema`'s, which docs/tables.md is generated from."""
    out, _ = exported
    for table in schema.TABLES:
        written = pq.read_schema(out / table.file).remove_metadata()
        assert written == table.schema(factors=2), table.file


def test_a_damaged_page_fails_its_checksum(exported, tmp_path):
    """Tables carry page checksums: a reader that checks them notices a flipped byte."""
    out, _ = exported
    for table in schema.TABLES:  # the export's own files pass the check
        schema.read_table(out / table.file, [c.name for c in table.columns])
    path = tmp_path / "scores.parquet"
    scores = np.random.default_rng(0).random(50_000, dtype=np.float32)  # incompressible: one large page
    schema.write_table(path, pa.table({"score": scores}))
    column = pq.ParquetFile(path).metadata.row_group(0).column(0)
    start = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + column.total_compressed_size // 2] ^= 0xFF  # inside a page's data
    path.write_bytes(bytes(data))
    with pytest.raises(OSError, match=r"(?i)crc"):
        schema.read_table(path, ["score"])


def test_tables_readable_by_duckdb_with_reported_row_counts(exported):
    out, summary = exported
    for table in summary["tables"].values():
        path = out / table["path"]
        assert duckdb.sql(f"select count(*) from '{path}'").fetchall() == [(table["rows"],)]
    top = duckdb.sql(
        f"select movie_id from '{out / 'recommendations.parquet'}' where user_id = 6 and rank = 1"
    )
    assert top.fetchall() == [(8,)]


def test_metrics_are_the_train_stage_evaluation_as_it_is(stage_inputs, tmp_path):
    index_dir, train_dir = stage_inputs
    evaluation = {"evaluated_model": "pre-refit: ...", "refit": True, "model": {"recall@20": 0.3}}
    (train_dir / "metrics.json").write_text(json.dumps(evaluation))
    summary = export(index_dir, train_dir, tmp_path / "out", ExportConfig(), progress=False)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == evaluation == summary["metrics"]


def test_no_metrics_without_holdout(stage_inputs, tmp_path):
    index_dir, train_dir = stage_inputs
    (train_dir / "metrics.json").write_text(json.dumps({"model": {}, "popularity": {}}))
    provenance = {"key": "nightly"}
    summary = export(
        index_dir, train_dir, tmp_path / "out", ExportConfig(), progress=False, provenance=provenance
    )
    assert "metrics" not in summary and not (tmp_path / "out" / "metrics.json").exists()
    assert pq.read_schema(tmp_path / "out" / "recommendations.parquet").metadata[b"wmf.run_id"] == b"nightly"


def test_model_shape_mismatch_is_refused(stage_inputs, tmp_path):
    index_dir, train_dir = stage_inputs
    save_file(
        {"user_factors": USER_FACTORS[:2], "movie_factors": MOVIE_FACTORS}, train_dir / "model.safetensors"
    )
    with pytest.raises(ValueError, match="does not match"):
        export(index_dir, train_dir, tmp_path / "out", ExportConfig(), progress=False)
