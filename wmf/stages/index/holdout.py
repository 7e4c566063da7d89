"""Which interactions the index holds out for evaluation: none, random, the latest, or probe's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from wmf.config import IndexConfig
from wmf.data.splits import hold_largest, holdout_counts, random_holdout
from wmf.stages.index.rows import Rows, pair_key, with_idx


def holdout_mask(rows: Rows, starts: np.ndarray, config: IndexConfig, probe_path: Path) -> np.ndarray:
    """Boolean per row: held out for evaluation."""
    if config.holdout == "none":
        return np.zeros(len(rows.key), dtype=bool)
    if config.holdout == "probe":
        return _probe_mask(rows, probe_path)
    if config.holdout == "random":
        return random_holdout(
            starts, rows.key, config.holdout_fraction, config.split_seed, config.holdout_min_user_ratings
        )
    # temporal: the most recent held out; equal dates -> the larger movie_idx
    rank_key = (rows.date.astype(np.int64) + 2**31).astype(np.uint64)
    counts = holdout_counts(np.diff(starts), config.holdout_fraction, config.holdout_min_user_ratings)
    return hold_largest(starts, rank_key, counts)


def _probe_mask(rows: Rows, probe_path: Path) -> np.ndarray:
    """Rows whose (user, movie) pair is listed in probe.parquet; other probe pairs are ignored."""
    lf = pl.scan_parquet(probe_path).select(pl.col("user_id", "movie_id").cast(pl.Int32))
    user_ids = pl.Series("user_id", rows.user_ids)
    movie_ids = pl.Series("movie_id", rows.movie_ids)
    probe = with_idx(lf, user_ids, movie_ids).collect()
    probe = pair_key(probe["user_idx"].to_numpy(), probe["movie_idx"].to_numpy(), rows.n_movies)
    pos = np.searchsorted(rows.key, probe)
    found = pos < len(rows.key)
    pos, probe = pos[found], probe[found]
    held = np.zeros(len(rows.key), dtype=bool)
    held[pos[rows.key[pos] == probe]] = True
    return held
