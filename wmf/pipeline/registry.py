"""The registry: every stage wmf knows, in the order `wmf run` runs the pipeline's.

Adding a stage is a package under `wmf.stages` with its declaration, and a line here; the
CLI, the flows, the status and the tests iterate these tuples.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from wmf.stages import Stage, compare, export, index, ingest, train, tune

PIPELINE: tuple[Stage, ...] = (ingest.STAGE, index.STAGE, train.STAGE, export.STAGE)
SEARCHES: tuple[Stage, ...] = (tune.STAGE, compare.STAGE)  # run on demand, published like stages
STAGES: dict[str, Stage] = {stage.name: stage for stage in (*PIPELINE, *SEARCHES)}
PIPELINE_NAMES: tuple[str, ...] = tuple(stage.name for stage in PIPELINE)


def report(name: str) -> ModuleType | None:
    """A stage's report module (what a run shows of its output), or None."""
    module = STAGES[name].report
    return None if module is None else importlib.import_module(module)


def upstream(stage: Stage) -> list[Stage]:
    """The pipeline stages up to the last one `stage` reads, that one included (tune: ingest,
    index)."""
    read = {r.stage for r in stage.reads}
    last = max((i for i, s in enumerate(PIPELINE) if s.name in read), default=-1)
    return list(PIPELINE[: last + 1])
