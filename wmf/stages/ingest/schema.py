"""The ingest's tables, column by column: what the index (and a reader of rejects) can rely on."""

from __future__ import annotations

import polars as pl

RATINGS_SCHEMA = {"movie_id": pl.Int32, "user_id": pl.Int32, "rating": pl.Int8, "date": pl.Date}
MOVIES_SCHEMA = {"movie_id": pl.Int32, "year": pl.Int16, "title": pl.String}
PROBE_SCHEMA = {"movie_id": pl.Int32, "user_id": pl.Int32}
REJECTS_SCHEMA = {"file": pl.String, "line": pl.Int64, "text": pl.String, "reason": pl.String}
