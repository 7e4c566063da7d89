"""The export stage: the trained model as Parquet tables for analysts (`tables`, whose columns
are `schema`'s), with drift.json against the previously published export (`drift`)."""

from __future__ import annotations

from wmf.config import ExportConfig
from wmf.layout import CONFIG, Export, Index, Train
from wmf.stages import Follow, Read, Stage
from wmf.stages.export import rules

STAGE = Stage(
    name="export",
    directory=Export.DIRECTORY,
    config=ExportConfig,
    build="wmf.stages.export.build",
    report="wmf.stages.export.report",
    help="recommendations, embeddings and similar movies as Parquet tables for analysts",
    reads=(
        Read("train", (Train.MODEL, Train.METRICS, Train.LOSS_CURVE, CONFIG)),
        Read("index", (Index.USERS, Index.MOVIES, Index.SEEN), agrees_with="train"),
    ),
    follows=Follow(
        "previous_export", (Export.RECOMMENDATIONS, Export.USER_EMBEDDINGS, Export.MOVIE_EMBEDDINGS)
    ),
    external=lambda config: rules.inputs(config.export.rules, config.index.until),
    unkeyed=("keep",),
    keep=lambda config: config.keep,
)
