"""Train stage: index output -> fitted factors, history and validation metrics."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from wmf.config import TrainConfig
from wmf.index import load_holdout, load_train
from wmf.model import CONFIG_FILE, MODEL_FILE, Callback, MatrixFactorization
from wmf.store import write_json

HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"


def train(
    index_dir: Path,
    out: Path,
    config: TrainConfig,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
    callback: Callback | None = None,
) -> dict[str, Any]:
    """Fit on index_dir's train CSR, validate on its holdout, write the model into `out`."""
    out = Path(out)
    interactions = load_train(index_dir)
    holdout = load_holdout(index_dir)
    model = MatrixFactorization(config).fit(
        interactions,
        holdout=holdout if len(holdout[0]) else None,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        callback=callback,
    )
    model.save(out)
    write_json(out / HISTORY_FILE, model.history)
    write_json(out / METRICS_FILE, {"model": model.metrics, "popularity": model.popularity})
    seconds = [r["seconds"] for r in model.history]
    return {
        "tables": {},
        "files": {
            "model": MODEL_FILE,
            "config": CONFIG_FILE,
            "history": HISTORY_FILE,
            "metrics": METRICS_FILE,
        },
        "final_loss": model.history[-1]["loss"] if model.history else None,
        "iterations": len(model.history),
        "seconds_per_iteration": statistics.median(seconds) if seconds else None,
        "metrics": model.metrics,
        "popularity": model.popularity,
        "device": str(model.device),
    }
