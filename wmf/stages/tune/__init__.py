"""The tune stage: an Optuna search of the train options on a validation split of the index's
training interactions (`search`), published like a stage; `report` says what it found."""

from __future__ import annotations

from wmf.config import TuneConfig
from wmf.layout import Index, Tune
from wmf.stages import Read, Stage
from wmf.values import flags, listing, setting

# The train options the search varies; those a trial takes from a tune option instead; and
# those every trial sets alike.
SEARCHED = ("factors", "unobserved_weight", "regularization", "scale_regularization", "alpha")
FROM_TUNE = {
    "iterations": "trial_iterations",
    "patience": "trial_patience",
    "early_stopping_metric": "metric",
}
PER_TRIAL = {"eval_every": 1, "refit": False}

STAGE = Stage(
    name="tune",
    directory=Tune.DIRECTORY,
    config=TuneConfig,
    build="wmf.stages.tune.build",
    report="wmf.stages.tune.report",
    help="search the train options (Optuna) on a validation split of the training data",
    description="Run the ingest and index stages (Cached when unchanged), then search the train "
    "options on a validation share of the index's training interactions (never its evaluation "
    "holdout), and publish DATA/tune/latest/ (best.toml, trials.parquet, tune.png). "
    "`wmf run --config DATA/tune/latest/best.toml` then trains with the best options.",
    reads=(Read("index", (Index.TRAIN,)),),
    sections=("train",),
    resume=Tune.STUDIES,
    keep_resume=True,
    units="trial",
    options=("ingest", "index", "train", "tune"),
    runs_upstream=True,
    about_sections=(
        (
            "train",
            "the base of every trial",
            f"The search varies {flags(SEARCHED)}; {flags(FROM_TUNE.values())} stand in for "
            f"{flags(FROM_TUNE)}; every trial runs with "
            f"{listing(setting(name, value) for name, value in PER_TRIAL.items())}.",
        ),
    ),
)
