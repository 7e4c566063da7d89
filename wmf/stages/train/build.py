"""The train stage's build: `fit.train` with its checkpoints, its progress and its loss curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wmf import plots
from wmf.layout import Train
from wmf.stages import BuildContext
from wmf.stages.train.fit import train
from wmf.store import read_json


def build(ctx: BuildContext) -> dict[str, Any]:
    config = ctx.config
    resumed = checkpoint_iteration(ctx.resume)
    if resumed:
        ctx.report(0.0, f"resuming training from its checkpoint after iteration {resumed}")
    planned = {"train": config.iterations, "refit": config.refit_iterations}
    total = max(sum(planned.values()), 1)

    def on_iteration(_model: Any, record: dict[str, Any]) -> None:
        phase, it = record["phase"], record["iteration"]
        done = it + (planned["train"] if phase == "refit" else 0)
        ctx.report(
            min(done / total, 1.0), f"{phase} iteration {it}/{planned[phase]} loss {record['loss']:.6g}"
        )

    warm = ctx.sources.get("warm_start")
    summary = train(
        ctx.sources["index"],
        ctx.out,
        config,
        checkpoint_dir=ctx.resume,
        progress=ctx.progress,
        callback=on_iteration,
        warm_from=warm,
    )
    summary["resumed_from_iteration"] = resumed
    summary["warm_start_from"] = None if warm is None else warm.name
    if plots.loss_curve(read_json(ctx.out / Train.HISTORY), ctx.out / Train.LOSS_CURVE):
        summary["files"]["loss_curve"] = Train.LOSS_CURVE
    return summary


def checkpoint_iteration(directory: Path | None) -> int:
    """Iterations already saved in a train's checkpoint folder (0 when there is none)."""
    from safetensors import safe_open

    path = None if directory is None else Path(directory) / Train.CHECKPOINT
    if path is None or not path.is_file():
        return 0
    with safe_open(path, framework="numpy") as f:  # the header only: no torch needed
        return int(f.metadata().get("iteration", 0))
