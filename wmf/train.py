"""Train stage: index output -> fitted factors, history and validation metrics.

When the index holds interactions out, the model trained on the rest is evaluated
on them; then (`refit`, the default) it is trained further on every interaction,
warm-started from its factors, and that refit model is the one saved and
published. The metrics are always the held-out evaluation of the model before
the refit: the refit has seen the held-out interactions, so no honest metric of
it can come from them.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from wmf.config import TrainConfig
from wmf.interactions import Holdout, distinct, load_all, load_holdout, load_train, sample_users
from wmf.metrics import split_stderr
from wmf.model import CONFIG_FILE, MODEL_FILE, Callback, MatrixFactorization
from wmf.store import write_json

HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
REFIT_CHECKPOINTS = "refit"


def train(
    index_dir: Path,
    out: Path,
    config: TrainConfig,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
    callback: Callback | None = None,
) -> dict[str, Any]:
    """Fit on index_dir's train CSR, validate on its holdout, refit on everything, write into `out`."""
    out = Path(out)
    holdout = load_holdout(index_dir)
    has_holdout = len(holdout[0]) > 0
    evaluated = sample_users(holdout, config.eval_users, config.seed)
    model = MatrixFactorization(config).fit(
        load_train(index_dir),
        holdout=evaluated if has_holdout else None,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        callback=callback,
    )
    history, metrics, popularity = model.history, model.metrics, model.popularity
    refit = config.refit and has_holdout and config.refit_iterations > 0
    if refit:
        init = (model.U, model.V)
        del model  # frees the training split's sparse operators before the full ones are built
        model = MatrixFactorization(config).fit(
            load_all(index_dir),
            init=init,
            iterations=config.refit_iterations,
            checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir) / REFIT_CHECKPOINTS,
            progress=progress,
            callback=callback,
            phase="refit",
        )
        history = history + model.history
    model.save(out)
    write_json(out / HISTORY_FILE, history)
    trained = [r for r in history if r["phase"] == "train"]
    evaluation = _evaluation(evaluated, metrics, popularity, len(trained), len(history) - len(trained))
    write_json(out / METRICS_FILE, evaluation)
    seconds = [r["seconds"] for r in trained]
    return {
        "tables": {},
        "files": {
            "model": MODEL_FILE,
            "config": CONFIG_FILE,
            "history": HISTORY_FILE,
            "metrics": METRICS_FILE,
        },
        "final_loss": history[-1]["loss"] if history else None,
        "iterations": len(trained),
        "refit_iterations": len(history) - len(trained),
        "seconds_per_iteration": statistics.median(seconds) if seconds else None,
        "metrics": evaluation["model"],
        "popularity": evaluation["popularity"],
        "evaluated_model": evaluation.get("evaluated_model"),
        "n_users_evaluated": evaluation.get("n_users_evaluated"),
        "device": str(model.device),
    }


def _evaluation(
    evaluated: Holdout,
    metrics: dict[str, float],
    popularity: dict[str, float],
    n_trained: int,
    n_refit: int,
) -> dict[str, Any]:
    """metrics.json: the held-out metrics of the `evaluated` pairs (a sample of users' holdouts)
    and, in words, which model they describe."""
    if not metrics:
        return {"model": {}, "popularity": {}}
    if n_refit:
        described = (
            f"pre-refit: the model after {n_trained} iterations on the training split, ranked "
            "against the held-out interactions; the published model was then refit on all "
            f"interactions for {n_refit} more iterations and has no held-out metrics"
        )
    else:
        described = "the published model, ranked against the held-out interactions it was not trained on"
    means, stderr = split_stderr(metrics)
    return {
        "evaluated_model": described,
        "refit": n_refit > 0,
        "ks": sorted({int(name.partition("@")[2]) for name in means}),
        "n_users_evaluated": len(distinct(evaluated[0])),
        "n_holdout": len(evaluated[0]),
        "model": means,
        "stderr": stderr,
        "popularity": split_stderr(popularity)[0],
    }
