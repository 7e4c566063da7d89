"""The index stage: contiguous user and movie indexes, filters, a holdout, the training CSR and
every movie each user rated (`build`, over `rows`, `sort`, `holdout` and `write`)."""

from __future__ import annotations

from wmf.config import IndexConfig
from wmf.layout import Index, Ingest
from wmf.stages import Read, Stage

STAGE = Stage(
    name="index",
    directory=Index.DIRECTORY,
    config=IndexConfig,
    build="wmf.stages.index.build",
    report="wmf.stages.index.report",
    help="contiguous ids, filters, a holdout and the training matrix, from the ingest",
    reads=(Read("ingest", (Ingest.RATINGS, Ingest.MOVIES, Ingest.PROBE)),),
)
