"""Pictures for people reading results: the loss curve, a search's history, the optimizer study."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wmf.store import atomic_path


def loss_curve(history: list[dict[str, Any]], path: Path) -> bool:
    """Write a PNG of the loss per iteration (and validation metrics when evaluated).

    Returns False, writing nothing, when there is no history to draw.
    """
    if not history:
        return False
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and workers
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    history = [{**r, "iteration": n} for n, r in enumerate(history, start=1)]  # refit continues the count
    evaluated = [r for r in history if "metrics" in r]
    fig = Figure(figsize=(7, 3.5 if len(evaluated) < 2 else 6), layout="constrained")
    axes = fig.subplots(2 if len(evaluated) >= 2 else 1, 1, squeeze=False)[:, 0]
    for phase, label in (("train", "training split"), ("refit", "refit on all interactions")):
        points = [(r["iteration"], r["loss"]) for r in history if r.get("phase", "train") == phase]
        if points:
            axes[0].plot(*zip(*points, strict=True), marker="o", markersize=3, label=label)
    axes[0].set(xlabel="iteration", ylabel="training loss", title="Weighted squared error")
    if any(r.get("phase") == "refit" for r in history):
        axes[0].legend()
    axes[0].grid(alpha=0.3)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(evaluated) >= 2:
        for name in ("recall@20", "ndcg@20"):
            points = [(r["iteration"], r["metrics"][name]) for r in evaluated if name in r["metrics"]]
            if points:
                axes[1].plot(*zip(*points, strict=True), marker="o", markersize=3, label=name)
        axes[1].set(xlabel="iteration", ylabel="validation")
        axes[1].legend()
        axes[1].grid(alpha=0.3)
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return True


def tune_history(trials: Any, metric: str, path: Path) -> None:
    """A PNG of a search: the metric per trial with the best so far, then against each parameter.

    `trials` is the trials table of wmf.stages.tune.search (a polars frame).
    """
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure

    done = trials.filter(trials["value"].is_not_null()).sort("number")
    params = ("unobserved_weight", "regularization", "factors", "alpha")
    fig = Figure(figsize=(12, 3.4), layout="constrained")
    axes = fig.subplots(1, 1 + len(params))
    complete = done.filter(done["state"] == "COMPLETE")
    pruned = done.filter(done["state"] == "PRUNED")
    axes[0].scatter(complete["number"], complete["value"], s=14, label="complete")
    axes[0].scatter(pruned["number"], pruned["value"], s=14, marker="x", color="grey", label="pruned (last)")
    if complete.height:
        best = np.maximum.accumulate(complete["value"].to_numpy())
        axes[0].step(complete["number"], best, where="post", color="C3", label="best so far")
    axes[0].set(xlabel="trial", ylabel=f"validation {metric}", title="optimisation history")
    fig.suptitle(f"wmf tune: validation {metric} of each trial")
    axes[0].legend(fontsize=7)
    for ax, name in zip(axes[1:], params, strict=True):
        for scaled, marker in ((False, "o"), (True, "^")):
            part = complete.filter(complete["scale_regularization"] == scaled)
            ax.scatter(part[name], part["value"], s=14, marker=marker, label=f"scaled reg: {scaled}")
        ax.set(xlabel=name, title=name)
        if name in ("unobserved_weight", "regularization"):
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def optimizer_curves(table: Any, path: Path) -> None:
    """A PNG of `wmf compare`: the exact loss against iteration and against seconds, log scales.

    `table` is comparison.parquet's frame (optimizer, learning_rate, iteration, seconds, loss).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    by_iteration, by_time = fig.subplots(1, 2, sharey=True)
    for name in table["optimizer"].unique(maintain_order=True):
        part = table.filter(table["optimizer"] == name)
        rate = part["learning_rate"][0]
        label = name if rate is None else f"{name} (lr {rate:g})"
        for ax, x in ((by_iteration, "iteration"), (by_time, "seconds")):
            ax.plot(part[x], part["loss"], label=label, linewidth=1.5)
    by_iteration.set(xlabel="iteration", ylabel="loss (exact objective, mean over all cells)")
    by_time.set(xlabel="seconds (optimizer steps only)")
    for ax in (by_iteration, by_time):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    by_iteration.legend(fontsize=8)
    fig.suptitle("Optimizers on the weighted objective, from the same initial factors")
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
