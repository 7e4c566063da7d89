"""One typed config object for every parameter of the pipeline.

Each stage has its own frozen dataclass so that a stage's cache key depends only
on the parameters it reads; `PipelineConfig` holds one of each, by section name. The
`help` metadata of every field is what `wmf --help` shows, the dataclasses are what
config files and flow parameters are checked against, and a stage's config is stored
beside each of its outputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from wmf.errors import ConfigError
from wmf.values import (
    EVALUATED_KS,
    GRADIENT_SOLVERS,
    OPTIMIZERS,
    Check,
    Checked,
    at_least,
    count,
    flag,
    fraction,
    momentum_value,
    parse_date,
    parse_factor_choices,
    parse_learning_rates,
    parse_metric,
    parse_optimizers,
    parsed,
    positive,
    refuse,
    toml_file,
    share,
    stars,
)


def opt(
    default: Any,
    help: str,
    choices: tuple[str, ...] | None = None,
    check: Check | None = None,
    path: bool = False,
) -> Any:
    """A config field carrying its command-line help (and choices, and a check of its value).
    `path`: a file's path, made absolute where it is given (against the working folder on the
    command line, the config file's folder in a config file), so a deployment finds it too."""
    return field(default=default, metadata={"help": help, "choices": choices, "check": check, "path": path})


@dataclass(frozen=True)
class IngestConfig(Checked):
    on_bad_lines: Literal["error", "skip"] = opt(
        "error",
        "error: stop at the first malformed line; skip: write it to rejects.parquet and go on",
        ("error", "skip"),
    )
    rehash: bool = opt(
        False,
        "read every raw file again for its fingerprint, even one unchanged since it was last "
        "hashed (same path, size, modification time and inode)",
    )
    max_shrink: float = opt(
        0.05,
        "refuse to publish an ingest with more than this share fewer ratings than the published "
        "one (a truncated download); 1 accepts any",
        check=share,
    )


@dataclass(frozen=True)
class IndexConfig(Checked):
    min_rating: int = opt(1, "a rating at or above this counts as an interaction", check=stars)
    min_user_ratings: int = opt(
        1,
        "drop users with fewer interactions (iterated with the movie filter; before the split)",
        check=count(0),
    )
    min_movie_ratings: int = opt(
        1,
        "drop movies with fewer interactions (iterated with the user filter; before the split)",
        check=count(0),
    )
    holdout: Literal["none", "random", "temporal", "probe"] = opt(
        "random",
        "which interactions to hold out for evaluation",
        ("none", "random", "temporal", "probe"),
    )
    holdout_fraction: float = opt(
        0.2, "fraction of each eligible user's interactions held out", check=fraction
    )
    holdout_min_user_ratings: int = opt(
        5, "only users with at least this many interactions get held-out pairs", check=count(0)
    )
    split_seed: int = opt(0, "seed of the random holdout")
    until: str = opt(
        "",
        "YYYY-MM-DD: leave out ratings dated after this day, to rebuild any night of the "
        "timeline (empty: every rating)",
        check=parsed(parse_date, empty="every rating"),
    )


@dataclass(frozen=True)
class TrainConfig(Checked):
    factors: int = opt(32, "embedding dimension d", check=count(1))
    iterations: int = opt(15, "ALS sweeps or gradient steps", check=count(1))
    unobserved_weight: float = opt(
        0.3,
        "w0: weight of every unwatched cell (notebook: 0.005; see the README's quality tables)",
        check=at_least(0),
    )
    regularization: float = opt(
        10.0, "L2 penalty on the factors (decisive on realistic data)", check=at_least(0)
    )
    scale_regularization: bool = opt(
        False, "scale each row's penalty by (its interactions + w0 * other side's size)"
    )
    alpha: float = opt(0.0, "confidence of a watched cell = 1 + alpha * rating", check=at_least(0))
    solver: Literal["als", "adam", "adamw", "adagrad", "sgd"] = opt(
        "als", "optimizer of the exact objective", ("als", *GRADIENT_SOLVERS)
    )
    als_solve: Literal["cg", "cholesky"] = opt(
        "cg", "inner solve of ALS: conjugate gradient or exact Cholesky", ("cg", "cholesky")
    )
    cg_steps: int = opt(3, "conjugate-gradient steps per ALS half-step (warm-started)", check=count(1))
    learning_rate: float = opt(0.05, "step size of adam/adagrad/sgd", check=positive)
    momentum: float = opt(0.0, "momentum of sgd", check=momentum_value)
    sigmoid: bool = opt(False, "predict sigmoid(f.u) as the notebook does (gradient solvers only)")
    device: Literal["auto", "cpu", "cuda"] = opt(
        "auto", "where to train: auto picks CUDA when available", ("auto", "cpu", "cuda")
    )
    cpu_kernels: Literal["numba", "torch"] = opt(
        "numba",
        "sparse products on the CPU: fused numba kernels, or torch CSR ops (the CUDA code path)",
        ("numba", "torch"),
    )
    seed: int = opt(0, "seed of the initial factors")
    init_scale: float = opt(0.01, "standard deviation of the initial factors", check=positive)
    eval_k: int = opt(20, "cut-off of the validation metrics", check=count(1))
    eval_users: int = opt(
        50_000,
        "held-out users the evaluation scores, a fixed random sample (0: all); the metrics come "
        "with their standard errors (0.0010 Recall@20 at full scale with 50,000)",
        check=count(0),
    )
    eval_every: int = opt(0, "evaluate every N iterations (0: only at the end)", check=count(0))
    early_stopping_metric: str = opt(
        "",
        "stop when this metric (e.g. ndcg@20) has not improved for `patience` evaluations",
        check=parsed(parse_metric, empty="no early stopping"),
    )
    patience: int = opt(2, "evaluations without improvement before early stopping", check=count(1))
    refit: bool = opt(
        True,
        "after the held-out evaluation, continue training on all interactions (held-out ones "
        "included) and publish that model; the metrics stay those of the evaluated model",
    )
    refit_iterations: int = opt(
        5,
        "ALS sweeps (or gradient steps) of the refit, warm-started from the evaluated model",
        check=count(0),
    )
    warm_start: bool = opt(
        True,
        "start from the published model when it has the same factors: users and movies matched "
        "by id, new ones folded in by one exact solve, then `warm_iterations` sweeps",
    )
    warm_iterations: int = opt(
        1,
        "ALS sweeps of a warm start, in each of the evaluated and the refit model (one matched a cold "
        "train within 0.001 Recall@20 after a day or a week of new ratings)",
        check=count(0),
    )
    fold_in_only: bool = opt(
        False,
        "no sweeps: fold new movies, then new users and users whose ratings changed in number, "
        "into the published model by one exact solve each (needs a published model)",
    )

    @property
    def evaluated_ks(self) -> tuple[int, ...]:
        """The cut-offs every evaluation computes its metrics at."""
        return tuple(sorted({*EVALUATED_KS, self.eval_k}))

    def together(self) -> None:
        if self.sigmoid and self.solver == "als":
            raise ConfigError(f"--sigmoid needs a gradient --solver ({', '.join(GRADIENT_SOLVERS)}), not als")
        if self.early_stopping_metric:
            check_cut_off("early_stopping_metric", self.early_stopping_metric, self)


@dataclass(frozen=True)
class ExportConfig(Checked):
    top_k: int = opt(100, "recommendations per user", check=count(1))
    similar_k: int = opt(20, "similar movies per movie", check=count(1))
    keep: int = opt(7, "published exports to keep", check=count(1))
    batch_users: int = opt(8192, "users scored per batch (bounds memory)", check=count(1))
    export_device: Literal["auto", "cpu", "cuda"] = opt(
        "auto", "where to score: auto picks CUDA when available", ("auto", "cpu", "cuda")
    )
    rules: str = opt(
        "",
        "TOML file of business rules: tables of the movies that may be shown (allow, with "
        "availability windows), never shown (deny) and pairs never recommended (exclude), applied "
        "inside the top-k (docs/tables.md#business-rules); empty: none",
        check=toml_file,
        path=True,
    )
    explain: int = opt(
        3,
        "`because` column: up to N movies the customer watched behind each recommendation, "
        "strongest first (the exact ALS decomposition, docs/model.md); 0 leaves the column out",
        check=count(0),
    )


@dataclass(frozen=True)
class TuneConfig(Checked):
    """The search of `wmf tune`: which train options, over which ranges, judged how."""

    trials: int = opt(20, "trials to finish (a resumed search counts the ones already done)", check=count(1))
    timeout_minutes: float = opt(
        0.0, "start no new trial after this many minutes (0: no limit)", check=at_least(0)
    )
    metric: str = opt(
        "ndcg@100", "validation metric to maximise (recall@20, ndcg@100, ...)", check=parsed(parse_metric)
    )
    validation_fraction: float = opt(
        0.2, "share of each user's training interactions held out for validation", check=fraction
    )
    validation_users: int = opt(
        5000,
        "users scored at every iteration: a fixed random sample of the validation users (0: all)",
        check=count(0),
    )
    folds: int = opt(
        0,
        "validation splits per trial, each its own random split; a trial's value is their mean "
        "(0: enough that `validation_users` users are scored in all, at most 5)",
        check=count(0),
    )
    trial_iterations: int = opt(
        30, "ALS sweeps per trial at most (early stopping and pruning end most sooner)", check=count(1)
    )
    trial_patience: int = opt(
        3, "sweeps without a better validation metric before a trial stops", check=count(1)
    )
    factor_choices: str = opt(
        "32,64,128", "comma-separated choices of the embedding dimension", check=parsed(parse_factor_choices)
    )
    unobserved_weight_min: float = opt(0.005, "lowest w0 tried (log scale)", check=positive)
    unobserved_weight_max: float = opt(1.0, "highest w0 tried", check=positive)
    regularization_min: float = opt(0.01, "lowest plain regularization tried (log scale)", check=positive)
    regularization_max: float = opt(1000.0, "highest plain regularization tried", check=positive)
    scaled_regularization_min: float = opt(
        1e-4, "lowest regularization tried with scale_regularization (log scale)", check=positive
    )
    scaled_regularization_max: float = opt(
        1.0, "highest regularization tried with scale_regularization", check=positive
    )
    alpha_max: float = opt(
        3.0, "highest alpha tried (from 0: confidence 1 + alpha * rating)", check=at_least(0)
    )
    startup_trials: int = opt(8, "random trials before the TPE sampler models the results", check=count(0))
    tune_seed: int = opt(0, "seed of the sampler and of the validation split")

    def together(self) -> None:
        for low in ("unobserved_weight_min", "regularization_min", "scaled_regularization_min"):
            high = low.removesuffix("_min") + "_max"
            if getattr(self, low) > getattr(self, high):
                raise refuse(low, getattr(self, low), f"at most {flag(high)} ({getattr(self, high)!r})")


@dataclass(frozen=True)
class CompareConfig(Checked):
    """The optimizer study of `wmf compare`: which optimizers, for how long, at which rates."""

    optimizers: str = opt(
        "adam,adamw,adagrad,sgd,sgd-momentum,als",
        f"comma-separated, from {', '.join(OPTIMIZERS)}",
        check=parsed(parse_optimizers),
    )
    steps: int = opt(100, "optimizer steps (ALS sweeps for als) of each optimizer", check=count(1))
    seconds: float = opt(
        0.0, "give every optimizer this wall-clock budget instead (0: `--steps`)", check=at_least(0)
    )
    compare_learning_rate: float = opt(
        0.0, "one learning rate for every gradient optimizer (0: each one's own)", check=at_least(0)
    )
    learning_rates: str = opt(
        "",
        "per optimizer, e.g. adam=0.05,sgd=1e6 (over --compare-learning-rate)",
        check=parsed(parse_learning_rates, empty="each optimizer's own"),
    )
    lr_sweep: bool = opt(False, "first sweep learning rates per gradient optimizer; each runs at its best")
    sweep_steps: int = opt(10, "steps of each learning rate tried by --lr-sweep", check=count(1))
    sgd_momentum: float = opt(0.9, "momentum of the sgd-momentum optimizer", check=momentum_value)
    compare_eval_every: int = opt(0, "validation metrics every N steps (0: only at the end)", check=count(0))
    allow_slow: bool = opt(False, "run adam-sigmoid on a CPU even where it would take long")


@dataclass(frozen=True)
class PipelineConfig:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)

    def __post_init__(self) -> None:
        check_cut_off("metric", self.tune.metric, self.train)  # a trial evaluates as the train options say

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, Any]]) -> PipelineConfig:
        return cls(**{name: section(**data.get(name, {})) for name, section in sections().items()})


def sections() -> dict[str, type]:
    """Every stage's config class by section name (`[ingest]`, ..., `[compare]`), in order."""
    return {f.name: f.default_factory for f in dataclasses.fields(PipelineConfig)}  # type: ignore[misc]


def check_cut_off(name: str, metric: str, train: TrainConfig) -> None:
    """A metric option's cut-off must be one the evaluation computes."""
    if parse_metric(metric)[1] not in train.evaluated_ks:
        ks = ", ".join(str(k) for k in EVALUATED_KS)
        raise refuse(name, metric, f"a cut-off the evaluation computes: {ks} or --eval-k ({train.eval_k})")


@dataclass(frozen=True)
class RunConfig(Checked):
    """How stages are orchestrated; changes nothing in their outputs, so not in cache keys."""

    retries: int = opt(2, "retries of a stage after a transient error (OSError, timeout)", check=count(0))
    retry_delay_seconds: float = opt(2.0, "first retry delay; doubles with each retry", check=at_least(0))
    keep_stage_outputs: int = opt(
        2,
        "outputs kept per stage, the published one included (and the one it continued from)",
        check=count(1),
    )
