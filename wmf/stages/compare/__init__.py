"""The compare stage: the notebook's optimizer study on the exact objective, at any scale
(`study`), published like a stage."""

from __future__ import annotations

from typing import Any

from wmf.config import CompareConfig
from wmf.layout import Compare, Index
from wmf.stages import Read, Stage
from wmf.values import flags, listing, setting

# Each optimizer as train options; the learning rate is its own unless one is given. The
# loss is a mean over all cells, so a plain gradient step's rate is given per cell: the
# rate used is that times the number of cells (the sum's curvature does not shrink with it).
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "adam": {"solver": "adam", "learning_rate": 0.05},
    "adamw": {"solver": "adamw", "learning_rate": 0.05},
    "adagrad": {"solver": "adagrad", "learning_rate": 0.5},
    "sgd": {"solver": "sgd", "learning_rate": 1e-4, "momentum": 0.0},
    "sgd-momentum": {"solver": "sgd", "learning_rate": 1e-5},
    "adam-sigmoid": {"solver": "adam", "learning_rate": 0.05, "sigmoid": True},
    "als": {"solver": "als"},
}
# The train options each optimizer sets; those its run takes from a compare option instead;
# and those every run sets alike.
PER_OPTIMIZER = tuple(dict.fromkeys(option for chosen in OPTIMIZERS.values() for option in chosen))
FROM_COMPARE = {"iterations": "steps", "eval_every": "compare_eval_every"}
PER_RUN = {"refit": False}

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
    about_sections=(
        (
            "train",
            "the base of every optimizer's run",
            f"Each optimizer sets its own {flags(PER_OPTIMIZER)} (the compare options "
            "--compare-learning-rate, --learning-rates and --sgd-momentum change them); "
            f"{flags(FROM_COMPARE.values())} stand in for {flags(FROM_COMPARE)}; every run has "
            f"{listing(setting(name, value) for name, value in PER_RUN.items())}.",
        ),
    ),
)
