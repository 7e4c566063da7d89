"""What an ingest shows: its raw files' counts and date ranges (quality.json's, as a table)."""

from __future__ import annotations

from typing import Any

from wmf.stages import Artifact

HISTORY = {"ratings": "Int64"}  # the columns an ingest adds to DATA/history/runs.parquet


def history(manifest: dict[str, Any]) -> dict[str, Any]:
    return {"ratings": manifest["outputs"]["ratings"]["rows"]}


def artifacts(manifest: dict[str, Any], _state: str) -> list[Artifact]:
    quality = manifest["summary"].get("quality")
    if not quality:
        return []
    return [Artifact("wmf-data-quality", "wmf ingest: raw files", table=quality["files"])]
