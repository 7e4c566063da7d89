"""The compare stage: the notebook's optimizer study on the exact objective, at any scale
(`study`), published like a stage."""

from __future__ import annotations

from wmf.config import CompareConfig
from wmf.layout import Compare, Index
from wmf.stages import Read, Stage

STAGE = Stage(
    name="compare",
    directory=Compare.DIRECTORY,
    config=CompareConfig,
    build="wmf.stages.compare.build",
    report="wmf.stages.compare.report",
    help="the notebook's optimizer study on the published index",
    description="Train each optimizer from the same initial factors on the published index, on the "
    "same exact objective, and publish DATA/compare/latest/ (comparison.parquet, compare.png).",
    reads=(Read("index", (Index.TRAIN, Index.HOLDOUT)),),
    sections=("train",),
    options=("compare", "train"),
)
