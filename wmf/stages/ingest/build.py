"""The ingest stage's build: a full parse, a partitioned one on a cluster, or tonight's new files
parsed and the others' rows reused from the published ingest."""

from __future__ import annotations

from typing import Any

from wmf.errors import DamagedOutputError
from wmf.layout import Ingest
from wmf.stages import BuildContext
from wmf.stages.ingest.parse import ingest
from wmf.stages.ingest.partitioned import ingest_partitioned
from wmf.stages.ingest.reuse import Reuse
from wmf.store import read_manifest


def build(ctx: BuildContext) -> dict[str, Any]:
    if ctx.distributed:
        return ingest_partitioned(ctx.raw, ctx.out, ctx.config, ctx.mapper, progress=ctx.progress)
    return ingest(ctx.raw, ctx.out, ctx.config, progress=ctx.progress, reuse=_reusable(ctx))


def _reusable(ctx: BuildContext) -> Reuse | None:
    """The published ingest of the same RAW by the same code, and its raw files unchanged since
    (same name and fingerprint); its ratings verified before any of its rows are taken (a
    damaged table means a full parse)."""
    if ctx.published is None:
        return None
    published = read_manifest(ctx.published)
    if (
        published["key"] == ctx.provenance["key"]  # a forced rebuild
        or published["code_hash"] != ctx.provenance["code_hash"]  # new code: parse everything again
        or published.get("raw") != str(ctx.raw)
    ):
        return None
    before = published["inputs"]["raw"]
    same = frozenset(name for name, fp in ctx.inputs["raw"].items() if before.get(name) == fp)
    if not same:
        return None
    try:
        ctx.verify(ctx.published, (Ingest.RATINGS,))
    except DamagedOutputError as exc:
        ctx.report(0.0, f"parsing every raw file: {exc}")
        return None
    return Reuse(ctx.published, same)
