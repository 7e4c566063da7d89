"""Pictures for people reading a run's results: the training loss curve."""

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
