"""The ingest stage: the raw Netflix Prize files to typed Parquet tables and quality.json.

`inputs` lists the raw files, `parse` writes the tables (`titles`, `lines` with the fast
`ratings_parser`), `quality` writes quality.json, `reuse` takes unchanged files' rows from the
published ingest, `partitioned` parses parts on a cluster; `build` is the stage's entry.
"""

from __future__ import annotations

from typing import Any

from wmf.config import IngestConfig
from wmf.errors import ShrinkError
from wmf.layout import Ingest
from wmf.stages import Stage
from wmf.stages.ingest.inputs import raw_files


def check_shrink(new: dict[str, Any], published: dict[str, Any] | None, config: IngestConfig) -> None:
    """Refuse an ingest with many fewer ratings than the published one: a truncated download."""
    if published is None:
        return
    before, now = published["outputs"]["ratings"]["rows"], new["outputs"]["ratings"]["rows"]
    if now < (1.0 - config.max_shrink) * before:
        raise ShrinkError(
            f"the new ingest has {now:,} ratings, {1 - now / before:.1%} fewer than the {before:,} of "
            f"the published one ({published['key']}), more than --max-shrink {config.max_shrink:g} "
            "allows: a truncated or partial raw file? Nothing was published. If the data really "
            "shrank, rerun with --max-shrink 1"
        )


STAGE = Stage(
    name="ingest",
    directory=Ingest.DIRECTORY,
    config=IngestConfig,
    build="wmf.stages.ingest.build",
    report="wmf.stages.ingest.report",
    help="parse the raw files into Parquet tables and quality.json",
    raw=raw_files,
    rehash=lambda config: config.rehash,
    unkeyed=("rehash", "max_shrink"),
    check=check_shrink,
)
