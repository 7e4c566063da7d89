"""One typed config object for every parameter of the pipeline.

Each stage has its own frozen dataclass so that a stage's cache key depends only
on the parameters it reads. The `help` metadata of every field is what
`wmf --help` shows, and the whole config is stored beside each output.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal


def opt(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A config field carrying its command-line help (and choices)."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class IngestConfig:
    on_bad_lines: Literal["error", "skip"] = opt(
        "error",
        "error: stop at the first malformed line; skip: write it to rejects.parquet and go on",
        ("error", "skip"),
    )


@dataclass(frozen=True)
class IndexConfig:
    min_rating: int = opt(1, "a rating at or above this counts as an interaction")
    min_user_ratings: int = opt(
        1,
        "drop users with fewer interactions (iterated with the movie filter; before the split)",
    )
    min_movie_ratings: int = opt(
        1, "drop movies with fewer interactions (iterated with the user filter; before the split)"
    )
    holdout: Literal["none", "random", "temporal", "probe"] = opt(
        "random",
        "which interactions to hold out for evaluation",
        ("none", "random", "temporal", "probe"),
    )
    holdout_fraction: float = opt(0.2, "fraction of each eligible user's interactions held out")
    holdout_min_user_ratings: int = opt(
        5, "only users with at least this many interactions get held-out pairs"
    )
    split_seed: int = opt(0, "seed of the random holdout")


@dataclass(frozen=True)
class TrainConfig:
    factors: int = opt(64, "embedding dimension d")
    iterations: int = opt(15, "ALS sweeps or gradient steps")
    unobserved_weight: float = opt(
        0.1, "w0: weight of every unwatched cell (notebook: 0.005; 0.1 won the bench sweep)"
    )
    regularization: float = opt(1.0, "L2 penalty on the factors (bench sweep: flat in 0.1-1)")
    scale_regularization: bool = opt(
        False, "scale each row's penalty by (its interactions + w0 * other side's size)"
    )
    alpha: float = opt(0.0, "confidence of a watched cell = 1 + alpha * rating")
    solver: Literal["als", "adam", "adagrad", "sgd"] = opt(
        "als", "optimizer of the exact objective", ("als", "adam", "adagrad", "sgd")
    )
    als_solve: Literal["cg", "cholesky"] = opt(
        "cg", "inner solve of ALS: conjugate gradient or exact Cholesky", ("cg", "cholesky")
    )
    cg_steps: int = opt(3, "conjugate-gradient steps per ALS half-step (warm-started)")
    learning_rate: float = opt(0.05, "step size of adam/adagrad/sgd")
    momentum: float = opt(0.0, "momentum of sgd")
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
    init_scale: float = opt(0.01, "standard deviation of the initial factors")
    eval_k: int = opt(20, "cut-off of the validation metrics")
    eval_every: int = opt(0, "evaluate every N iterations (0: only at the end)")
    early_stopping_metric: str = opt(
        "", "stop when this metric (e.g. ndcg@20) has not improved for `patience` evaluations"
    )
    patience: int = opt(2, "evaluations without improvement before early stopping")
    refit: bool = opt(
        True,
        "after the held-out evaluation, continue training on all interactions (held-out ones "
        "included) and publish that model; the metrics stay those of the evaluated model",
    )
    refit_iterations: int = opt(
        5, "ALS sweeps (or gradient steps) of the refit, warm-started from the evaluated model"
    )


@dataclass(frozen=True)
class ExportConfig:
    top_k: int = opt(100, "recommendations per user")
    similar_k: int = opt(20, "similar movies per movie")
    keep: int = opt(7, "published exports to keep")
    batch_users: int = opt(8192, "users scored per batch (bounds memory)")
    device: Literal["auto", "cpu", "cuda"] = opt(
        "auto", "where to score: auto picks CUDA when available", ("auto", "cpu", "cuda")
    )


@dataclass(frozen=True)
class PipelineConfig:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, Any]]) -> PipelineConfig:
        parts = {f.name: f.type for f in dataclasses.fields(cls)}
        return cls(**{name: STAGE_CONFIGS[name](**data.get(name, {})) for name in parts})


STAGE_CONFIGS: dict[str, type] = {
    "ingest": IngestConfig,
    "index": IndexConfig,
    "train": TrainConfig,
    "export": ExportConfig,
}


@dataclass(frozen=True)
class RunConfig:
    """How stages are orchestrated; changes nothing in their outputs, so not in cache keys."""

    retries: int = opt(2, "retries of a stage after a transient error (OSError, timeout)")
    retry_delay_seconds: float = opt(2.0, "first retry delay; doubles with each retry")
    keep_stage_outputs: int = opt(2, "outputs kept per stage besides the published one")
