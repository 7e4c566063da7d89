"""Index stage: ratings -> contiguous user/movie indexes, a train CSR, a holdout and what was seen.

Full scale, 100 M ratings, in seconds on 2 cores:
- ids become contiguous indexes through lookup tables, following ascending ids, and the
  rows are sorted once by (user_idx, movie_idx) with a radix sort (`rows`, `sort`);
- duplicate (user, movie) pairs collapse to one interaction (latest date, highest
  rating), so the result never depends on input row order;
- the user/movie minimums are iterated to a fixed point (a k-core): after filtering every
  kept user and movie really has the minimum, before the split;
- random and temporal holdouts keep each user's rows of largest rank, a seeded hash of the
  pair or the date, picked per user by a partition, not a sort (`holdout`);
- `write` lays out the training CSR, the holdout and `seen.npz`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from tqdm import tqdm

from wmf.config import IndexConfig
from wmf.errors import MissingInputError, WmfError
from wmf.layout import Index, Ingest
from wmf.stages import BuildContext
from wmf.stages.index.holdout import holdout_mask
from wmf.stages.index.rows import read_interactions
from wmf.stages.index.write import below_min_rating, write_outputs
from wmf.values import parse_date


def build(ctx: BuildContext) -> dict[str, Any]:
    return build_index(ctx.sources["ingest"], ctx.out, ctx.config, ctx.progress)


def build_index(ingest_dir: Path, out: Path, config: IndexConfig, progress: bool = True) -> dict[str, Any]:
    """Build users/movies tables, train.npz, holdout.parquet and seen.npz from an ingest output."""
    ingest_dir, out = Path(ingest_dir), Path(out)
    ratings_path = ingest_dir / Ingest.RATINGS
    if not ratings_path.is_file():
        raise MissingInputError(f"{ratings_path} not found: run the ingest stage first")
    probe_path = ingest_dir / Ingest.PROBE
    if config.holdout == "probe" and not probe_path.is_file():
        raise MissingInputError(
            f"holdout='probe' needs {probe_path}, which the ingest stage writes only when "
            "the raw data has probe.txt: add probe.txt or choose another holdout"
        )

    bar = tqdm(total=4, desc="index", unit="step", disable=not progress)
    bar.set_postfix_str("read")
    ratings = _scan_ratings(ratings_path, config.until)
    n_ratings_in = ratings.select(pl.len()).collect().item()
    rows = read_interactions(ratings, ratings_path, config.min_rating, config.holdout == "temporal")
    n_interactions_raw = len(rows.key)
    bar.update()

    bar.set_postfix_str("dedupe+filter")
    n_duplicates = rows.collapse_duplicates()
    n_interactions = len(rows.key)
    rounds = rows.filter_min_counts(config.min_user_ratings, config.min_movie_ratings)
    if len(rows.key) == 0:
        raise WmfError(
            f"no interactions left: {n_interactions} with rating >= {config.min_rating}, "
            f"none survive min_user_ratings={config.min_user_ratings} and "
            f"min_movie_ratings={config.min_movie_ratings}"
        )
    bar.update()

    bar.set_postfix_str("split")
    starts = rows.row_starts()
    held = holdout_mask(rows, starts, config, probe_path)
    bar.update()

    bar.set_postfix_str("write")
    below = below_min_rating(rows, ratings, config.min_rating)
    counts = write_outputs(rows, starts, held, below, ingest_dir / Ingest.MOVIES, out)
    bar.update()
    bar.close()
    return {
        "tables": {
            "users": {"path": Index.USERS, "rows": counts["n_users"]},
            "movies": {"path": Index.MOVIES, "rows": counts["n_movies"]},
            "holdout": {"path": Index.HOLDOUT, "rows": counts["n_holdout"]},
            "train": {"path": Index.TRAIN, "rows": counts["n_train"]},
            "seen": {"path": Index.SEEN, "rows": counts["n_seen"]},
        },
        **counts,
        "n_ratings_in": int(n_ratings_in),
        "n_interactions": int(n_interactions),
        "n_duplicates": int(n_duplicates),
        "n_below_min_rating": int(n_ratings_in - n_interactions_raw),
        "filter_rounds": rounds,
    }


def _scan_ratings(path: Path, until: str) -> pl.LazyFrame:
    """The ratings the index sees: those dated up to `until` (all when it is empty)."""
    lf = pl.scan_parquet(path)
    return lf.filter(pl.col("date") <= parse_date(until)) if until else lf  # checked by IndexConfig
