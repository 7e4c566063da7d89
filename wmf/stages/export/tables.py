"""Export stage: the trained model as query-ready Parquet tables (and metrics.json).

Tables are keyed by the original Netflix ids, not the internal indices, and each
carries its provenance (run id, creation time, package version, code hash, parameters)
as Parquet key-value metadata so that a file found alone still says where it
came from; their columns are `schema`'s. The recommendations (48 M rows at full scale) are scored and written
one batch of users at a time, so memory is bounded by the batch size. They never
contain a movie the customer rated (at any rating, held out or not: the index's
`seen.npz`). The metrics are the train stage's held-out evaluation, copied as they
are: the exported model may be a refit that has seen the held-out interactions.
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.numpy import load_file
from tqdm import tqdm

from wmf import __version__, store
from wmf.config import ExportConfig
from wmf.data.interactions import load_seen
from wmf.evaluation.topk import similar_items, top_k
from wmf.layout import CONFIG, Export, Index, Train
from wmf.stages import Mapper
from wmf.stages.export import rule_tables, rules, schema
from wmf.stages.export.drift import Lists, drift, ranked_lists

_WINDOW = 8  # batches handed to the mapper at once: bounds memory under Dask too


def export(
    index_dir: Path,
    train_dir: Path,
    out: Path,
    config: ExportConfig,
    progress: bool = True,
    provenance: dict[str, str] | None = None,
    mapper: Mapper = map,
    previous: Path | None = None,
    day: str | None = None,
) -> dict[str, Any]:
    """Write recommendations, embeddings, similar movies, metrics and drift into `out`.

    `provenance`: the output's key and code hash (see `schema.PROVENANCE`); `previous`: the
    previously published export, which drift.json compares against; `day`: the day the
    business rules (`config.rules`) apply (`rules.day`).
    """
    index_dir, train_dir, out = Path(index_dir), Path(train_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    users = pq.read_table(index_dir / Index.USERS).sort_by("user_idx")
    movies = pq.read_table(index_dir / Index.MOVIES).sort_by("movie_idx")
    factors = load_file(train_dir / Train.MODEL)
    user_factors, movie_factors = factors["user_factors"], factors["movie_factors"]
    seen = load_seen(index_dir)
    n_users, n_movies = len(seen[0]) - 1, movies.num_rows
    if user_factors.shape[0] != n_users or movie_factors.shape[0] != n_movies:
        raise ValueError(
            f"model {user_factors.shape[0]} x {movie_factors.shape[0]} does not match "
            f"index {n_users} x {n_movies}"
        )
    metadata = _provenance(provenance or {"key": out.name}, train_dir, config)
    d = int(user_factors.shape[1])
    ruled = None
    if config.rules:
        ids = (movies["movie_id"].to_numpy(), users["user_id"].to_numpy())
        ruled = rule_tables.load(config.rules, day or rules.day(""), *ids)

    n_recommended, lists = _write_recommendations(
        out / Export.RECOMMENDATIONS,
        user_factors,
        movie_factors,
        seen,
        users,
        movies,
        config,
        metadata,
        progress,
        mapper,
        ruled,
    )
    rows = {
        Export.RECOMMENDATIONS: n_recommended,
        Export.USER_EMBEDDINGS: _write(
            out,
            schema.USER_EMBEDDINGS,
            {"user_id": users["user_id"].cast(pa.int32()), "embedding": _embeddings(user_factors)},
            metadata,
        ),
        Export.MOVIE_EMBEDDINGS: _write(
            out,
            schema.MOVIE_EMBEDDINGS,
            {
                **_movie_columns(movies),
                "embedding": _embeddings(movie_factors),
                "n_train": movies["n_train"].cast(pa.int32()),
            },
            metadata,
        ),
        Export.SIMILAR_MOVIES: _write_similar(out, movie_factors, movies, config, metadata, progress, ruled),
    }
    summary: dict[str, Any] = {
        "run_id": metadata[b"wmf.run_id"].decode(),
        "n_users": n_users,
        "n_movies": n_movies,
        "factors": d,
        "tables": {name.removesuffix(".parquet"): {"path": name, "rows": n} for name, n in rows.items()},
    }
    if ruled is not None:
        summary["rules"] = {"day": day, **ruled.counts}
        summary["warnings"] = ruled.warnings
    summary["drift"] = drift(previous, lists, out)
    store.write_json(out / Export.DRIFT, summary["drift"])
    metrics = store.read_json(train_dir / Train.METRICS) if (train_dir / Train.METRICS).is_file() else {}
    if metrics.get("model"):
        store.write_json(out / Export.METRICS, metrics)
        summary["metrics"] = metrics
    return summary


def _scoring(config: ExportConfig, ruled: rule_tables.Rules | None) -> dict[str, Any]:
    """Device and batch of the scoring: small cache-sized batches on the CPU, large ones on a GPU;
    the movies the rules allow, when they leave some out."""
    device = config.export_device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    candidates = None if ruled is None or ruled.allowed.all() else np.flatnonzero(ruled.allowed)
    return {
        "device": device,
        "batch_size": 256 if device == "cpu" else config.batch_users,
        "candidates": candidates,
    }


def _rows(csr: tuple[np.ndarray, np.ndarray], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows lo..hi of a CSR, its indptr re-based to 0."""
    indptr, indices = csr
    return indptr[lo : hi + 1] - indptr[lo], indices[indptr[lo] : indptr[hi]]


def _provenance(provenance: dict[str, str], train_dir: Path, config: ExportConfig) -> dict[bytes, bytes]:
    """Key-value metadata stamped on every table (`schema.PROVENANCE`)."""
    model_config = train_dir / CONFIG
    params = json.loads(model_config.read_text()) if model_config.exists() else {}
    values = {
        "wmf.run_id": provenance["key"],
        "wmf.created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wmf.package_version": __version__,
        "wmf.code_hash": provenance.get("code_hash", ""),
        "wmf.model_params": json.dumps(params, sort_keys=True),
        "wmf.export_config": json.dumps(dataclasses.asdict(config), sort_keys=True),
    }
    return {k.encode(): v.encode() for k, v in values.items()}


def _movie_columns(movies: pa.Table) -> dict[str, pa.Array]:
    return {
        "movie_id": movies["movie_id"].cast(pa.int32()),
        "title": movies["title"].cast(pa.string()),
        "year": movies["year"].cast(pa.int16()),
    }


def _embeddings(factors: np.ndarray) -> pa.FixedSizeListArray:
    flat = np.ascontiguousarray(factors, dtype=np.float32).ravel()
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), factors.shape[1])


def _write(out: Path, table: schema.Table, columns: dict[str, Any], metadata: dict[bytes, bytes]) -> int:
    factors = columns["embedding"].type.list_size if "embedding" in columns else 0
    return schema.write_table(out / table.file, pa.table(columns, schema=table.schema(factors, metadata)))


def _ranked_rows(
    owner_ids: np.ndarray, items: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Long format of top-k lists, empty (-1) slots dropped: owner, rank (1-based), item, score."""
    n, k = items.shape
    kept = items.ravel() >= 0
    owner = np.repeat(owner_ids, k)[kept]
    rank = np.tile(np.arange(1, k + 1, dtype=np.int16), n)[kept]
    return owner, rank, items.ravel()[kept], scores.ravel()[kept]


def _score_batch(
    job: tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray, int, dict],
) -> tuple:
    """Ranked rows (user id, rank, movie index, score) of one batch of users: a unit of work
    that a Dask worker can run alone (it gets its factor rows and seen CSR slice with it)."""
    user_factors, movie_factors, seen, user_ids, k, scoring = job
    items, scores = top_k(user_factors, movie_factors, k, exclude=seen, **scoring)
    return _ranked_rows(user_ids, items, scores)


def _write_recommendations(
    path: Path,
    user_factors: np.ndarray,
    movie_factors: np.ndarray,
    seen: tuple[np.ndarray, np.ndarray],
    users: pa.Table,
    movies: pa.Table,
    config: ExportConfig,
    metadata: dict[bytes, bytes],
    progress: bool,
    mapper: Mapper = map,
    ruled: rule_tables.Rules | None = None,
) -> tuple[int, Lists]:
    """Score batches of users through `mapper` (built-in `map`, or a Dask client's) and write
    them in user order; `mapper` sees a window of batches at a time, so memory stays bounded
    (but for the lists themselves, kept for drift.json: 12 bytes a row)."""
    user_ids = users["user_id"].to_numpy().astype(np.int32)
    movie_columns = _movie_columns(movies)
    movie_ids = movie_columns["movie_id"].to_numpy()
    arrow = schema.RECOMMENDATIONS.schema(metadata=metadata)
    scoring = _scoring(config, ruled)
    n_users = len(seen[0]) - 1

    def job(lo: int) -> tuple[Any, ...]:
        hi = min(lo + config.batch_users, n_users)
        rated = _rows(seen, lo, hi)
        if ruled is not None and len(ruled.excluded[1]):
            rated = rule_tables.union(rated, _rows(ruled.excluded, lo, hi))
        return user_factors[lo:hi], movie_factors, rated, user_ids[lo:hi], config.top_k, scoring

    def table(owner: np.ndarray, rank: np.ndarray, movie_idx: np.ndarray, score: np.ndarray) -> pa.Table:
        taken = pa.array(movie_idx)
        columns = {
            "user_id": owner,
            "rank": rank,
            "movie_id": movie_ids[movie_idx],
            "score": score,
            "title": movie_columns["title"].take(taken),
            "year": movie_columns["year"].take(taken),
        }
        return pa.table(columns, schema=arrow)

    starts = list(range(0, n_users, config.batch_users))
    n_rows, kept = 0, []
    bar = tqdm(total=len(starts), disable=not progress, desc="recommendations", unit="batch")
    # One writer thread, one batch behind: compressing a batch overlaps scoring the next
    # (pyarrow and the scoring kernels release the GIL); batches are written in order.
    with schema.writer(path, arrow) as writer, ThreadPoolExecutor(1) as pool:
        pending: Future[None] | None = None
        for window in range(0, len(starts), _WINDOW):
            jobs = [job(lo) for lo in starts[window : window + _WINDOW]]
            for rows in mapper(_score_batch, jobs):
                batch = table(*rows)
                kept.append((rows[0], batch["movie_id"].to_numpy(), rows[3]))
                if pending is not None:
                    pending.result()
                pending = pool.submit(writer.write_table, batch)
                n_rows += batch.num_rows
                bar.update()
        if pending is not None:
            pending.result()
    bar.close()
    if not kept:
        kept = [(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32))]
    return n_rows, ranked_lists(*(np.concatenate(column) for column in zip(*kept, strict=True)))


def _write_similar(
    out: Path,
    movie_factors: np.ndarray,
    movies: pa.Table,
    config: ExportConfig,
    metadata: dict[bytes, bytes],
    progress: bool,
    ruled: rule_tables.Rules | None,
) -> int:
    movie_ids = movies["movie_id"].to_numpy().astype(np.int32)
    items, scores = similar_items(
        movie_factors, config.similar_k, progress=progress, **_scoring(config, ruled)
    )
    owner, rank, similar_idx, score = _ranked_rows(movie_ids, items, scores)
    columns = {"movie_id": owner, "rank": rank, "similar_movie_id": movie_ids[similar_idx], "score": score}
    return _write(out, schema.SIMILAR_MOVIES, columns, metadata)
