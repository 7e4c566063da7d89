"""The compare stage's build: the optimizer study on the index's training interactions."""

from __future__ import annotations

from typing import Any

from wmf.stages import BuildContext
from wmf.stages.compare.study import compare


def build(ctx: BuildContext) -> dict[str, Any]:
    return compare(ctx.sources["index"], ctx.out, ctx.config, ctx.sections["train"], progress=ctx.progress)
