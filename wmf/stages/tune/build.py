"""The tune stage's build: the search, its study kept in the stage's resume folder."""

from __future__ import annotations

from typing import Any

from wmf.layout import Tune
from wmf.stages import BuildContext
from wmf.stages.tune.search import tune


def build(ctx: BuildContext) -> dict[str, Any]:
    journal = ctx.resume / Tune.JOURNAL
    ctx.report(0.0, f"searching {ctx.config.trials} trials (study {journal})")
    return tune(
        ctx.sources["index"],
        ctx.out,
        ctx.config,
        ctx.sections["train"],
        journal,
        mapper=ctx.mapper,
        parallel=ctx.parallel,
        progress=ctx.progress,
    )
