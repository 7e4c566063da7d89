"""What a train shows: whether it started warm (from which model) or cold, and the held-out
metrics it adds to a night's history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wmf.layout import Train
from wmf.store import read_json

METRICS = ("recall@20", "ndcg@100")
# Its columns in DATA/history/runs.parquet, and those of its trend plot (label, columns, limits).
HISTORY = {
    "warm_start": "Boolean",
    "warm_start_from": "String",
    **dict.fromkeys(METRICS, "Float64"),
    "popularity_recall@20": "Float64",
}
TREND = ("held-out metric", (*METRICS, "popularity_recall@20"), None)


def details(manifest: dict[str, Any], published: Path) -> dict[str, Any]:
    """Warm or cold, and the held-out metrics beside the popularity baseline's (with standard
    errors, from metrics.json: the summary keeps no errors)."""
    source = manifest["summary"].get("warm_start_from")
    out: dict[str, Any] = {"start": "cold" if source is None else "warm", "warm_start_from": source}
    path = published / Train.METRICS
    if path.is_file():
        evaluation = read_json(path)
        out["evaluated_users"] = evaluation["n_users_evaluated"]
        out["metrics"] = {
            name: {
                "model": evaluation["model"][name],
                "stderr": evaluation.get("stderr", {}).get(name),
                "popularity": evaluation["popularity"].get(name),
            }
            for name in METRICS
            if name in evaluation["model"]
        }
    return out


def lines(details: dict[str, Any]) -> list[str]:
    source = details["warm_start_from"]
    out = [f"started warm, from the model {source}" if source else "started cold"]
    if details.get("metrics"):
        parts = [
            f"{name} {m['model']:.3f}"
            + (f" ± {m['stderr']:.3f}" if m["stderr"] is not None else "")
            + (f" (popularity {m['popularity']:.3f})" if m["popularity"] is not None else "")
            for name, m in details["metrics"].items()
        ]
        out.append(f"held out, {details['evaluated_users']:,} users: " + ", ".join(parts))
    return out


def history(manifest: dict[str, Any]) -> dict[str, Any]:
    summary = manifest["summary"]
    return {
        "warm_start": summary.get("warm_start_from") is not None,
        "warm_start_from": summary.get("warm_start_from"),
        **{metric: summary.get("metrics", {}).get(metric) for metric in METRICS},
        "popularity_recall@20": summary.get("popularity", {}).get("recall@20"),
    }
