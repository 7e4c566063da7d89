"""The export stage's build: the analyst tables (`tables.export`) and the model's loss curve."""

from __future__ import annotations

import shutil
from typing import Any

from wmf.errors import MissingInputError
from wmf.layout import Export, Train
from wmf.stages import BuildContext
from wmf.stages.export import rules
from wmf.stages.export.tables import export


def build(ctx: BuildContext) -> dict[str, Any]:
    train_dir = ctx.sources["train"]
    planned = ctx.inputs.get("external", {})
    if planned and rules.inputs(ctx.config.rules, planned["day"]) != planned:
        raise MissingInputError(
            f"the rule files of {ctx.config.rules} changed since this run began: run it again"
        )
    summary = export(
        ctx.sources["index"],
        train_dir,
        ctx.out,
        ctx.config,
        progress=ctx.progress,
        provenance=ctx.provenance,
        mapper=ctx.mapper,
        previous=ctx.sources.get("previous_export"),
        day=planned.get("day"),
    )
    if (train_dir / Train.LOSS_CURVE).is_file():
        shutil.copyfile(train_dir / Train.LOSS_CURVE, ctx.out / Export.LOSS_CURVE)
        summary.setdefault("files", {})["loss_curve"] = Export.LOSS_CURVE
    return summary
