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
from wmf.export import export

USER_IDS = [6, 42, 2649429]
MOVIE_IDS = [1, 8, 30, 17770]
TITLES = ["Dinosaur Planet", "What the #$*! Do We Know!?", "Something's Gotta Give", "Rúsalka"]
YEARS = [2003, None, 2003, 1962]
SEEN = [[0, 2], [0, 1, 2], []]  # user 42 has one unseen movie
HOLDOUT = [(0, 3), (2, 1)]


def write_index(directory: Path, holdout: list[tuple[int, int]]) -> None:
    directory.mkdir()
    n_train = [len(s) for s in SEEN]
    n_holdout = [sum(u == i for u, _ in holdout) for i in range(len(USER_IDS))]
    pl.DataFrame(
        {"user_idx": range(3), "user_id": USER_IDS, "n_train": n_train, "n_holdout": n_holdout},
        schema={"user_idx": pl.Int32, "user_id": pl.Int32, "n_train": pl.Int32, "n_holdout": pl.Int32},
    ).write_parquet(directory / "users.parquet")
    counts = np.bincount(np.concatenate([np.array(s, dtype=int) for s in SEEN]), minlength=4)
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
    indices = np.concatenate([np.array(s, dtype=np.int32) for s in SEEN])
    np.savez(
        directory / "train.npz",
        indptr=np.cumsum([0, *n_train]).astype(np.int64),
        indices=indices,
        ratings=np.full(len(indices), 4, np.int8),
        shape=np.array([3, 4], np.int64),
    )
    pl.DataFrame(
        {"user_idx": [u for u, _ in holdout], "movie_idx": [m for _, m in holdout]},
        schema={"user_idx": pl.Int32, "movie_idx": pl.Int32},
    ).write_parquet(directory / "holdout.parquet")


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
    out = tmp_path / "run-123"
    summary = export(*stage_inputs, out, ExportConfig(top_k=3, similar_k=2, batch_users=2), progress=False)
    return out, summary


def test_recommendations_exclude_seen_and_follow_scores(exported):
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
    # user 6 = [1, 0] saw movies 1 and 30: unseen 8 (score 2) then 17770 (score 1); only 2 unseen
    assert by_user[6]["movie_id"].to_list() == [8, 17770]
    assert by_user[6]["score"].to_list() == [2.0, 1.0]
    assert by_user[42]["movie_id"].to_list() == [17770]
    # user 2649429 = [1, 1]: scores 3, 2, 2, 2: ties to the lower movie index
    assert by_user[2649429]["movie_id"].to_list() == [1, 8, 30]
    assert by_user[2649429]["rank"].to_list() == [1, 2, 3]
    assert recs["title"].to_list()[:2] == [TITLES[1], TITLES[3]]
    assert (
        recs.filter(pl.col("movie_id") == 8)["year"].null_count()
        == recs.filter(pl.col("movie_id") == 8).height
    )
    assert recs.select("user_id", "rank").equals(recs.select("user_id", "rank").sort("user_id", "rank"))
    assert summary["tables"]["recommendations"] == {"path": "recommendations.parquet", "rows": 6}


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
        assert metadata[b"wmf.run_id"] == b"run-123", name
        assert metadata[b"wmf.code_version"] == wmf.__version__.encode()
        assert json.loads(metadata[b"wmf.model_params"]) == {"config": {"factors": 2, "alpha": 0.0}}
        assert metadata[b"wmf.created_at"].startswith(b"20")
        assert pq.ParquetFile(out / table["path"]).metadata.row_group(0).column(0).compression == "ZSTD"


def test_tables_readable_by_duckdb_with_reported_row_counts(exported):
    out, summary = exported
    for table in summary["tables"].values():
        path = out / table["path"]
        assert duckdb.sql(f"select count(*) from '{path}'").fetchall() == [(table["rows"],)]
    top = duckdb.sql(
        f"select movie_id from '{out / 'recommendations.parquet'}' where user_id = 6 and rank = 1"
    )
    assert top.fetchall() == [(8,)]


def test_metrics_for_model_and_popularity(exported):
    out, summary = exported
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == summary["metrics"]
    # user 6 holds out 17770 (its rank 2 of 2 unseen); user 2649429 holds out 8 (its rank 2)
    assert metrics["model"]["recall@10"] == 1.0
    assert metrics["model"]["ndcg@10"] == pytest.approx(1 / np.log2(3))
    assert metrics["n_users_evaluated"] == 2
    assert set(metrics["popularity"]) == set(metrics["model"])


def test_no_metrics_without_holdout(stage_inputs, tmp_path):
    index_dir, train_dir = stage_inputs
    (index_dir / "holdout.parquet").unlink()
    pl.DataFrame(schema={"user_idx": pl.Int32, "movie_idx": pl.Int32}).write_parquet(
        index_dir / "holdout.parquet"
    )
    summary = export(index_dir, train_dir, tmp_path / "out", ExportConfig(), progress=False, run_id="nightly")
    assert "metrics" not in summary and not (tmp_path / "out" / "metrics.json").exists()
    assert pq.read_schema(tmp_path / "out" / "recommendations.parquet").metadata[b"wmf.run_id"] == b"nightly"


def test_model_shape_mismatch_is_refused(stage_inputs, tmp_path):
    index_dir, train_dir = stage_inputs
    save_file(
        {"user_factors": USER_FACTORS[:2], "movie_factors": MOVIE_FACTORS}, train_dir / "model.safetensors"
    )
    with pytest.raises(ValueError, match="does not match"):
        export(index_dir, train_dir, tmp_path / "out", ExportConfig(), progress=False)
