"""`wmf tune`: an Optuna search of the train options on a validation split of the training data.

The evaluation holdout of the index is never looked at: each trial trains on the
index's training interactions minus a per-user validation share, and is judged
on that share, at every iteration, so the pruner can stop hopeless trials and
early stopping finds each trial's iteration count. On a small set a trial is
repeated on several independent splits (folds) and judged by their mean, since
one split's noise would outweigh the differences between good options. The study lives in a journal
file under DATA, so a killed search resumes with its finished trials.

The search loop asks the study for a batch of trials, runs them through a
`mapper` (Prefect tasks, one after another or on a Dask cluster) and tells the
study the results; a trial reads the study from the journal to report its
intermediate values and to ask the pruner.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import polars as pl
from tqdm import tqdm

from wmf import configfile, plots
from wmf.config import IndexConfig, TrainConfig, TuneConfig
from wmf.data.interactions import Holdout, Interactions, load_train, sample_users
from wmf.data.splits import random_holdout
from wmf.errors import WmfError
from wmf.layout import Tune
from wmf.stages import Mapper
from wmf.stages.tune import FROM_TUNE, PER_TRIAL, SEARCHED
from wmf.values import parse_factor_choices

MAX_AUTO_FOLDS = 5
_FOLD_SEED_STRIDE = 1_000_003
_STATES = {"COMPLETE": optuna.trial.TrialState.COMPLETE, "PRUNED": optuna.trial.TrialState.PRUNED}


@dataclass(frozen=True)
class TrialJob:
    """One trial, self-contained and picklable: it may run in another process."""

    index_dir: str
    journal: str
    study_name: str
    trial_id: int
    number: int
    train: dict[str, Any]
    tune: dict[str, Any]

    @property
    def name(self) -> str:
        return f"trial-{self.number}"

    def describe(self, result: dict[str, Any]) -> str:
        """One log line of the trial's outcome and options."""
        t = self.train
        scaled = " (scaled)" if t["scale_regularization"] else ""
        return (
            f"trial {self.number} {result['state']}: {self.tune['metric']} {result['value'] or 0.0:.4f} at "
            f"iteration {result['best_iteration']} of {result['iterations']} ({result['seconds']:.1f} s); "
            f"factors {t['factors']}, w0 {t['unobserved_weight']:.3g}, "
            f"reg {t['regularization']:.3g}{scaled}, alpha {t['alpha']:.2f}"
        )


def validation_split(train: Interactions, config: TuneConfig, fold: int = 0) -> tuple[Interactions, Holdout]:
    """The training interactions minus each user's validation share, and that share.

    Each fold is an independent random split of its own seed.
    """
    users = np.repeat(np.arange(train.n_users, dtype=np.int64), np.diff(train.indptr))
    # a negative seed: never the index's own split of the same pairs
    seed = -1 - config.tune_seed - _FOLD_SEED_STRIDE * fold
    keys = users * train.n_movies + train.indices
    eligible = IndexConfig().holdout_min_user_ratings  # the index holdout's default
    held = random_holdout(train.indptr, keys, config.validation_fraction, seed, eligible)
    kept_per_user = np.diff(train.indptr) - np.bincount(users[held], minlength=train.n_users)
    indptr = np.zeros(train.n_users + 1, np.int64)
    np.cumsum(kept_per_user, out=indptr[1:])
    fit = Interactions(indptr, train.indices[~held], train.ratings[~held], train.shape)
    return fit, (users[held].astype(np.int32), train.indices[held].astype(np.int32))


def n_folds(config: TuneConfig, n_users: int) -> int:
    """The configured folds, or (0) as many as make `validation_users` scored users in all, at most 5.

    On a small set one split leaves so few validation users that the noise of the
    metric outweighs the differences between good options; more folds average it out.
    """
    if config.folds > 0:
        return config.folds
    wanted = config.validation_users if config.validation_users > 0 else n_users
    return max(1, min(MAX_AUTO_FOLDS, -(-wanted // max(n_users, 1))))


def suggest(trial: optuna.Trial, config: TuneConfig) -> dict[str, Any]:
    """Train options of one trial from the search space (regularization's range depends on scaling)."""
    factors = parse_factor_choices(config.factor_choices)
    scaled = trial.suggest_categorical("scale_regularization", [False, True])
    if scaled:
        lo, hi, name = (
            config.scaled_regularization_min,
            config.scaled_regularization_max,
            "scaled_regularization",
        )
    else:
        lo, hi, name = config.regularization_min, config.regularization_max, "regularization"
    return {
        "factors": trial.suggest_categorical("factors", factors),
        "unobserved_weight": trial.suggest_float(
            "unobserved_weight", config.unobserved_weight_min, config.unobserved_weight_max, log=True
        ),
        "regularization": trial.suggest_float(name, lo, hi, log=True),
        "scale_regularization": scaled,
        "alpha": trial.suggest_float("alpha", 0.0, config.alpha_max),
    }


def open_study(journal: Path, name: str, config: TuneConfig) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress is ours: tqdm and one log line per trial
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    return optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=config.tune_seed, n_startup_trials=config.startup_trials),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=config.startup_trials, n_warmup_steps=3),
        load_if_exists=True,
    )


def run_trial(job: TrialJob) -> dict[str, Any]:
    """Train one trial on each fold, early-stopped on its validation metric; its value is the mean.

    The first fold reports its metric per iteration, so the pruner can stop the trial
    there; the others run only for trials it let through.
    """
    tune = TuneConfig(**job.tune)
    study = open_study(Path(job.journal), job.study_name, tune)
    trial = optuna.trial.Trial(study, job.trial_id)
    train = load_train(Path(job.index_dir))
    config = TrainConfig(**job.train)
    started, curves, state = time.perf_counter(), [], "COMPLETE"
    for fold in range(n_folds(tune, train.n_users)):
        curves.append([])
        try:
            _fit_fold(train, tune, config, fold, curves[-1], trial if fold == 0 else None)
        except optuna.TrialPruned:
            state = "PRUNED"
            break
    best = [int(np.argmax(c)) for c in curves if c]
    return {
        "number": job.number,
        "state": state,
        "value": float(np.mean([c[b] for c, b in zip(curves, best, strict=False)])) if best else None,
        "best_iteration": int(np.median(best)) + 1 if best else 1,
        "iterations": sum(len(c) for c in curves),
        "folds": len(best),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _fit_fold(
    train: Interactions,
    tune: TuneConfig,
    config: TrainConfig,
    fold: int,
    values: list[float],
    trial: optuna.Trial | None,
) -> None:
    """Fit on the fold's share, appending the validation metric of each iteration to `values`."""
    from wmf.model.factorization import MatrixFactorization

    fit, validation = validation_split(train, tune, fold)
    validation = sample_users(validation, tune.validation_users, tune.tune_seed + fold)

    def report(_model: MatrixFactorization, record: dict[str, Any]) -> None:
        values.append(record["metrics"][tune.metric])
        if trial is not None:
            trial.report(values[-1], step=record["iteration"])
            if trial.should_prune():
                raise optuna.TrialPruned

    MatrixFactorization(config).fit(fit, holdout=validation, progress=False, callback=report)


def tune(
    index_dir: Path,
    out: Path,
    config: TuneConfig,
    base: TrainConfig,
    journal: Path,
    mapper: Mapper = map,
    parallel: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the search to `config.trials` finished trials; write best.toml, trials.parquet, tune.png."""
    journal.parent.mkdir(parents=True, exist_ok=True)
    study = open_study(journal, "wmf-tune", config)
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)  # a killed run's; we hold DATA's lock
    if not study.trials and (start := _starting_point(base, config)):
        study.enqueue_trial(start)  # the search starts from the given options: it can only improve on them
    from_tune = {option: getattr(config, name) for option, name in FROM_TUNE.items()}
    fixed = dataclasses.replace(base, **from_tune, **PER_TRIAL)
    deadline = time.monotonic() + 60 * config.timeout_minutes if config.timeout_minutes > 0 else None
    bar = tqdm(total=config.trials, initial=_finished(study), disable=not progress, desc="tune", unit="trial")

    def todo() -> int:
        in_time = deadline is None or time.monotonic() < deadline
        return config.trials - _finished(study) if in_time else 0

    while (n := todo()) > 0:
        asked = [study.ask() for _ in range(min(parallel, n))]
        jobs = [
            TrialJob(
                str(index_dir),
                str(journal),
                study.study_name,
                trial._trial_id,
                trial.number,
                dataclasses.asdict(dataclasses.replace(fixed, **suggest(trial, config))),
                dataclasses.asdict(config),
            )
            for trial in asked
        ]
        for trial, result in zip(asked, mapper(run_trial, jobs), strict=True):
            trial.set_user_attr("result", result)
            value = result["value"] if result["state"] == "COMPLETE" else None
            study.tell(trial, value, state=_STATES[result["state"]])
            bar.update()
    bar.close()
    return _write_outputs(study, base, config, out)


def _starting_point(base: TrainConfig, config: TuneConfig) -> dict[str, Any] | None:
    """The base train options as trial parameters, when they lie in the search space."""
    name = "scaled_regularization" if base.scale_regularization else "regularization"
    inside = (
        base.factors in parse_factor_choices(config.factor_choices)
        and config.unobserved_weight_min <= base.unobserved_weight <= config.unobserved_weight_max
        and getattr(config, f"{name}_min") <= base.regularization <= getattr(config, f"{name}_max")
        and 0.0 <= base.alpha <= config.alpha_max
    )
    if not inside:
        return None
    return {
        "scale_regularization": base.scale_regularization,
        "factors": base.factors,
        "unobserved_weight": base.unobserved_weight,
        name: base.regularization,
        "alpha": base.alpha,
    }


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=tuple(_STATES.values())))


def trials_table(study: optuna.Study) -> pl.DataFrame:
    """One row per trial: its train options, state, metric, iterations and seconds."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        result = t.user_attrs.get("result", {})
        params = dict(t.params)
        params["regularization"] = params.pop("scaled_regularization", params.get("regularization"))
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                **{name: params.get(name) for name in SEARCHED},
                "value": t.value if t.value is not None else result.get("value"),
                "best_iteration": result.get("best_iteration"),
                "iterations": result.get("iterations"),
                "folds": result.get("folds"),
                "seconds": result.get("seconds"),
            }
        )
    schema = {
        "number": pl.Int32,
        "state": pl.String,
        "factors": pl.Int32,
        "unobserved_weight": pl.Float64,
        "regularization": pl.Float64,
        "scale_regularization": pl.Boolean,
        "alpha": pl.Float64,
        "value": pl.Float64,
        "best_iteration": pl.Int32,
        "iterations": pl.Int32,
        "folds": pl.Int32,
        "seconds": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def _write_outputs(study: optuna.Study, base: TrainConfig, config: TuneConfig, out: Path) -> dict[str, Any]:
    table = trials_table(study)
    table.write_parquet(out / Tune.TRIALS, compression="zstd")
    done = table.filter(pl.col("state") == "COMPLETE").sort(["value", "number"], descending=[True, False])
    if done.is_empty():
        raise WmfError("no trial completed: raise --trials or --timeout-minutes")
    best = done.row(0, named=True)
    options = {name: best[name] for name in SEARCHED} | {"iterations": best["best_iteration"]}
    (out / Tune.BEST).write_text(configfile.dumps({"train": options}))
    plots.tune_history(table, config.metric, out / Tune.PLOT)
    return {
        "tables": {"trials": {"path": Tune.TRIALS, "rows": table.height}},
        "files": {"best": Tune.BEST, "trials": Tune.TRIALS, "plot": Tune.PLOT},
        "metric": config.metric,
        "best_value": best["value"],
        "best_trial": best["number"],
        "best": {"train": options},
        "states": dict(table.group_by("state").len().iter_rows()),
        "base": {k: v for k, v in dataclasses.asdict(base).items() if k not in SEARCHED},
    }
