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
from wmf.data.interactions import Holdout, distinct, load_all, load_holdout, load_train, sample_users
from wmf.errors import WmfError
from wmf.evaluation.metrics import split_stderr
from wmf.layout import CONFIG, Train
from wmf.model.factorization import Callback, MatrixFactorization
from wmf.stages.train.warmstart import Ids, Previous, Start, carry_over, load_previous, save_evaluated
from wmf.store import write_json


def train(
    index_dir: Path,
    out: Path,
    config: TrainConfig,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
    callback: Callback | None = None,
    warm_from: Path | None = None,
) -> dict[str, Any]:
    """Fit on index_dir's train CSR, validate on its holdout, refit on everything, write into `out`.

    `warm_from`: a published train output with the same factors to start from (see
    `wmf.stages.train.warmstart`); each phase then runs `warm_iterations` instead of its own count.
    """
    out = Path(out)
    ids = Ids.of_index(index_dir)
    previous = None if warm_from is None else load_previous(warm_from)
    if config.fold_in_only:
        return _fold_in_only(index_dir, out, config, ids, previous, progress)
    holdout = load_holdout(index_dir)
    has_holdout = len(holdout[0]) > 0
    evaluated = sample_users(holdout, config.eval_users, config.seed)
    refit = config.refit and has_holdout and config.refit_iterations > 0
    start = None
    if previous is not None:
        start = carry_over(previous.evaluated or previous.published, previous.ids, ids)
    model = MatrixFactorization(config).fit(
        load_train(index_dir),
        holdout=evaluated if has_holdout else None,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        callback=callback,
        **_warm(start, config),
    )
    history, metrics, popularity = model.history, model.metrics, model.popularity
    if refit:
        pre_refit = (model.user_factors, model.movie_factors)
        del model  # frees the training split's sparse operators before the full ones are built
        if previous is not None:
            start = carry_over(previous.published, previous.ids, ids)
            continued = _warm(start, config)
        else:
            continued = {"init": pre_refit, "iterations": config.refit_iterations}
        model = MatrixFactorization(config).fit(
            load_all(index_dir),
            checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir) / Train.REFIT,
            progress=progress,
            callback=callback,
            phase="refit",
            **continued,
        )
        history = history + model.history
    model.save(out, ids.tensors())
    if refit:
        save_evaluated(out, pre_refit)
    write_json(out / Train.HISTORY, history)
    trained = [r for r in history if r["phase"] == "train"]
    evaluation = _evaluation(
        evaluated, metrics, popularity, len(trained), len(history) - len(trained), warm=previous is not None
    )
    write_json(out / Train.METRICS, evaluation)
    return _summary(model, history, evaluation, start)


def _warm(start: Start | None, config: TrainConfig) -> dict[str, Any]:
    """fit()'s arguments of a warm start (none for a cold one)."""
    if start is None:
        return {}
    return {"init": start.init, "fold_in": start.fold_in, "iterations": config.warm_iterations}


def _fold_in_only(
    index_dir: Path, out: Path, config: TrainConfig, ids: Ids, previous: Previous | None, progress: bool
) -> dict[str, Any]:
    """The published model with tonight's new movies, new users and changed users solved in."""
    if previous is None:
        raise WmfError(
            "--fold-in-only needs a published model with the same factors to fold into; "
            "run a full train first (or drop --fold-in-only)"
        )
    start = carry_over(previous.published, previous.ids, ids, refold_changed=True)
    model = MatrixFactorization(config).fit(
        load_all(index_dir), progress=progress, init=start.init, fold_in=start.fold_in, iterations=0
    )
    model.save(out, ids.tensors())
    write_json(out / Train.HISTORY, [])
    evaluation = {
        "evaluated_model": "none: a fold-in into the published model, which has no held-out metrics",
        "model": {},
        "popularity": {},
    }
    write_json(out / Train.METRICS, evaluation)
    return _summary(model, [], evaluation, start)


def _summary(
    model: MatrixFactorization, history: list[dict[str, Any]], evaluation: dict[str, Any], start: Start | None
) -> dict[str, Any]:
    trained = [r for r in history if r["phase"] == "train"]
    seconds = [r["seconds"] for r in trained]
    return {
        "tables": {},
        "files": {
            "model": Train.MODEL,
            "config": CONFIG,
            "history": Train.HISTORY,
            "metrics": Train.METRICS,
        },
        "final_loss": history[-1]["loss"] if history else None,
        "iterations": len(trained),
        "refit_iterations": len(history) - len(trained),
        "seconds_per_iteration": statistics.median(seconds) if seconds else None,
        "metrics": evaluation["model"],
        "popularity": evaluation["popularity"],
        "evaluated_model": evaluation.get("evaluated_model"),
        "n_users_evaluated": evaluation.get("n_users_evaluated"),
        "fold_in": None if start is None else start.counts,
        "device": str(model.device),
    }


def _evaluation(
    evaluated: Holdout,
    metrics: dict[str, float],
    popularity: dict[str, float],
    n_trained: int,
    n_refit: int,
    warm: bool = False,
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
    if warm:
        described = f"warm-started from the previously published model's evaluated factors; {described}"
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
