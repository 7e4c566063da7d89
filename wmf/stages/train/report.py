"""What a train shows: whether it started warm (from which model) or cold, and the held-out
metrics it adds to a night's history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

METRICS = ("recall@20", "ndcg@100")
# Its columns in DATA/history/runs.parquet, and those of its trend plot (label, columns, limits).
HISTORY = {
    "warm_start": "Boolean",
    "warm_start_from": "String",
    **dict.fromkeys(METRICS, "Float64"),
    "popularity_recall@20": "Float64",
}
TREND = ("held-out metric", (*METRICS, "popularity_recall@20"), None)


def details(manifest: dict[str, Any], _published: Path) -> dict[str, Any]:
    source = manifest["summary"].get("warm_start_from")
    return {"start": "cold" if source is None else "warm", "warm_start_from": source}


def lines(details: dict[str, Any]) -> list[str]:
    source = details["warm_start_from"]
    return [f"started warm, from the model {source}" if source else "started cold"]


def history(manifest: dict[str, Any]) -> dict[str, Any]:
    summary = manifest["summary"]
    return {
        "warm_start": summary.get("warm_start_from") is not None,
        "warm_start_from": summary.get("warm_start_from"),
        **{metric: summary.get("metrics", {}).get(metric) for metric in METRICS},
        "popularity_recall@20": summary.get("popularity", {}).get("recall@20"),
    }
