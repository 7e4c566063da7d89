"""The train stage: the weighted matrix factorization fitted on the index's training
interactions, evaluated on its holdout and refit on all of them (`build`, `fit`), warm-started
from the published model (`warmstart`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wmf.config import TrainConfig
from wmf.layout import Index, Train
from wmf.stages import Follow, Read, Stage


def _can_warm_start(config: TrainConfig, directory: Path, manifest: dict[str, Any]) -> bool:
    """A model with the same factors, saved with its ids (an older version's was not)."""
    if manifest["config"]["factors"] != config.factors:
        return False
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(directory / Train.MODEL, framework="numpy") as f:
            return "user_ids" in f.keys()  # noqa: SIM118 - not a dict
    except (OSError, SafetensorError):  # gone or unreadable: no start
        return False


STAGE = Stage(
    name="train",
    directory=Train.DIRECTORY,
    config=TrainConfig,
    build="wmf.stages.train.build",
    report="wmf.stages.train.report",
    help="fit the factorization, evaluate it on the holdout, refit it on every interaction",
    reads=(Read("index", (Index.TRAIN, Index.HOLDOUT, Index.USERS, Index.MOVIES)),),
    follows=Follow(
        "warm_start",
        (Train.MODEL, Train.EVALUATED),
        wanted=lambda config: config.warm_start or config.fold_in_only,
        usable=_can_warm_start,
    ),
    resume=Train.CHECKPOINTS,
)
