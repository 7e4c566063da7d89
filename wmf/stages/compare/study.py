"""`wmf compare`: the original notebook's optimizer study, on the exact objective, at any scale.

Every optimizer starts from the same initial factors (the train options' seed) on the
published index's training interactions, minimizes the same weighted objective (its
loss is the exact mean over all cells, through Gramians) and is evaluated on the same
sample of held-out users. ALS sits beside the gradient optimizers. `adam-sigmoid` is
the notebook's sigmoid output: its all-cells term has no Gramian shortcut, so on a CPU
at scale it is refused with an estimate of its time unless `allow_slow`.

Published: comparison.parquet (one row per optimizer and iteration: cumulative step
seconds, loss, metrics where evaluated), sweep.parquet with `lr_sweep`, compare.png.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from wmf import plots
from wmf.config import CompareConfig, TrainConfig
from wmf.data.interactions import Interactions, load_holdout, load_train, sample_users
from wmf.errors import WmfError
from wmf.layout import Compare
from wmf.model.factorization import MatrixFactorization, resolve_device
from wmf.model.objective import SIGMOID_BLOCK
from wmf.stages.compare import FROM_COMPARE, OPTIMIZERS, PER_RUN
from wmf.values import parse_learning_rates, parse_optimizers

# Learning rates --lr-sweep tries, by solver (sgd's per cell, as in OPTIMIZERS).
SWEEP_RATES: dict[str, tuple[float, ...]] = {
    "adam": (0.003, 0.01, 0.03, 0.1, 0.3),
    "adamw": (0.003, 0.01, 0.03, 0.1, 0.3),
    "adagrad": (0.03, 0.1, 0.3, 1.0, 3.0),
    "sgd": (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4),
}
MAX_CPU_SIGMOID_MINUTES = 10.0


def options(
    name: str, base: TrainConfig, config: CompareConfig, cells: int, rate: float | None = None
) -> TrainConfig:
    """The train options of one optimizer's run (`rate`: the swept one; sgd's per cell)."""
    chosen = {"sigmoid": False, **OPTIMIZERS[name]}  # only adam-sigmoid predicts sigmoid(f.u)
    if name == "sgd-momentum":
        chosen["momentum"] = config.sgd_momentum
    if chosen["solver"] != "als":
        given = parse_learning_rates(config.learning_rates).get(name) or config.compare_learning_rate or None
        own = (rate or chosen["learning_rate"]) * (cells if chosen["solver"] == "sgd" else 1)
        chosen["learning_rate"] = given or own
    from_compare = {option: getattr(config, field) for option, field in FROM_COMPARE.items()}
    return dataclasses.replace(base, **from_compare, **PER_RUN, **chosen)


def compare(
    index_dir: Path, out: Path, config: CompareConfig, base: TrainConfig, progress: bool = True
) -> dict:
    """Run every optimizer; write comparison.parquet (and sweep.parquet) and compare.png into `out`."""
    names = parse_optimizers(config.optimizers)
    train = load_train(index_dir)
    holdout = sample_users(load_holdout(index_dir), base.eval_users, base.seed)
    if "adam-sigmoid" in names:
        _check_sigmoid(train, base, config)
    sweep = _sweep(names, train, base, config, progress) if config.lr_sweep else []
    best = {row["optimizer"]: row["rate"] for row in _best(sweep)}
    rows = []
    for name in names:
        run = options(name, base, config, _cells(train), best.get(name))
        rows += _curve(name, run, train, holdout if len(holdout[0]) else None, config, progress)
    table = pl.DataFrame(rows, schema_overrides={"learning_rate": pl.Float64}, infer_schema_length=None)
    table.write_parquet(Path(out) / Compare.COMPARISON)
    tables = {"comparison": {"path": Compare.COMPARISON, "rows": table.height}}
    if sweep:
        pl.DataFrame(sweep).write_parquet(Path(out) / Compare.SWEEP)
        tables["sweep"] = {"path": Compare.SWEEP, "rows": len(sweep)}
    plots.optimizer_curves(table, Path(out) / Compare.PLOT)
    final = table.group_by("optimizer", maintain_order=True).last()
    return {"tables": tables, "files": {"plot": Compare.PLOT}, "final": final.to_dicts()}


def _curve(
    name: str,
    run: TrainConfig,
    train: Interactions,
    holdout: Any,
    config: CompareConfig,
    progress: bool,
) -> list[dict[str, Any]]:
    """One optimizer's rows: iteration, cumulative step seconds, loss, metrics where evaluated."""
    spent = [0.0]

    def budget(_model: MatrixFactorization, record: dict[str, Any]) -> bool:
        spent[0] += record["seconds"]
        return (config.seconds > 0 and spent[0] >= config.seconds) or not math.isfinite(record["loss"])

    iterations = 10**9 if config.seconds > 0 else None  # None: the run's, --steps
    model = MatrixFactorization(run).fit(
        train, holdout=holdout, progress=progress, callback=budget, iterations=iterations, label=name
    )
    rate = None if run.solver == "als" else run.learning_rate
    seconds = np.cumsum([r["seconds"] for r in model.history])
    return [
        {
            "optimizer": name,
            "learning_rate": rate,
            "iteration": r["iteration"],
            "seconds": float(s),
            "loss": r["loss"],
            "recall@20": r.get("metrics", {}).get("recall@20"),
            "ndcg@100": r.get("metrics", {}).get("ndcg@100"),
        }
        for r, s in zip(model.history, seconds, strict=True)
    ]


def _sweep(
    names: list[str], train: Interactions, base: TrainConfig, config: CompareConfig, progress: bool
) -> list[dict]:
    """Each gradient optimizer at each rate of its grid for `sweep_steps` steps: final losses."""
    short = dataclasses.replace(config, steps=config.sweep_steps, seconds=0.0, compare_eval_every=0)
    rows = []
    for name in names:
        solver = OPTIMIZERS[name]["solver"]
        for rate in SWEEP_RATES.get(solver, ()):
            run = options(name, base, short, _cells(train), rate)
            curve = _curve(name, run, train, None, short, progress)
            rows.append(
                {
                    "optimizer": name,
                    "rate": rate,
                    "learning_rate": run.learning_rate,
                    "loss": curve[-1]["loss"],
                }
            )
    return rows


def _cells(train: Interactions) -> int:
    return int(train.shape[0]) * int(train.shape[1])


def _best(sweep: list[dict]) -> list[dict]:
    """Per optimizer, the swept rate with the lowest finite final loss."""
    finite = [r for r in sweep if math.isfinite(r["loss"])]
    return [
        min((r for r in finite if r["optimizer"] == name), key=lambda r: r["loss"])
        for name in dict.fromkeys(r["optimizer"] for r in finite)
    ]


def _check_sigmoid(train: Interactions, base: TrainConfig, config: CompareConfig) -> None:
    """Refuse a sigmoid run that would take long on a CPU, saying how long (from one timed block)."""
    if resolve_device(base.device).type != "cpu" or config.allow_slow:
        return
    n_users, n_movies = train.shape
    block = max(1, min(n_movies, SIGMOID_BLOCK // max(n_users, 1)))  # the objective's own blocks
    U, V = torch.randn(n_users, base.factors), torch.randn(block, base.factors)
    for _ in range(2):  # the second pass is timed: the first warms up the threads
        started = time.perf_counter()
        s = torch.sigmoid(U @ V.T)
        _ = (s * s * (1 - s)).T @ U, s @ V
    per_step = 2 * (time.perf_counter() - started) * n_movies / block  # the loss pass and the gradient pass
    steps = config.steps if config.seconds <= 0 else config.seconds / per_step
    minutes = per_step * steps / 60
    if minutes > MAX_CPU_SIGMOID_MINUTES:
        raise WmfError(
            f"adam-sigmoid has no Gramian shortcut: each step scores all {n_users:,} x {n_movies:,} cells, "
            f"~{per_step:.0f} s on this CPU, ~{minutes:.0f} min for {steps:.0f} steps; run it on a GPU, "
            "drop it from --optimizers, or pass --allow-slow"
        )
