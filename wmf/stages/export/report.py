"""What an export shows: the held-out metrics beside the popularity baseline, and the loss curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wmf.layout import Export
from wmf.stages import Artifact
from wmf.store import read_json

# drift.json's figures: counts, and shares of the customers compared.
COUNTS = ("users_compared", "new_users", "dropped_users", "new_movies", "dropped_movies")
SHARES = ("share_changed@10", "jaccard@10", "rbo")
# The recommendations' rows and drift.json's figures, in DATA/history/runs.parquet; the shares
# in its trend plot.
HISTORY = {"recommendations": "Int64", **dict.fromkeys(COUNTS, "Int64"), **dict.fromkeys(SHARES, "Float64")}
TREND = ("against the previous export", tuple(reversed(SHARES)), (0.0, 1.05))


def history(manifest: dict[str, Any]) -> dict[str, Any]:
    drift = manifest["summary"].get("drift", {})
    rows = manifest["outputs"]["recommendations"]["rows"]
    return {"recommendations": rows, **{name: drift.get(name) for name in (*COUNTS, *SHARES)}}


def details(manifest: dict[str, Any], published: Path) -> dict[str, Any]:
    ruled = manifest["summary"].get("rules")
    return {"tables": str(published), **({"rules": ruled} if ruled else {})}


def lines(details: dict[str, Any]) -> list[str]:
    out = [f"analysts' tables: {details['tables']}"]
    if "rules" in details:
        out.append(rules_line(details["rules"]))
    return out


def rules_line(counts: dict[str, Any]) -> str:
    """`rules of 2005-12-31: 15,993 movies allowed (1,777 denied, ...), 1,000,000 pairs excluded`."""
    parts = [
        f"{counts[name]:,} {label}"
        for name, label in (
            ("denied", "denied"),
            ("in_catalogue", "in the catalogue"),
            ("available", "available that day"),
        )
        if name in counts
    ]
    text = f"rules of {counts['day']}: {counts['allowed']:,} movies allowed"
    text += f" ({', '.join(parts)})" if parts else ""
    return text + f", {counts.get('excluded_pairs', 0):,} customer-movie pairs excluded"


def artifacts(manifest: dict[str, Any], _state: str) -> list[Artifact]:
    out = []
    if ruled := manifest["summary"].get("rules"):
        out.append(Artifact("wmf-rules", "The business rules the export applied", markdown=rules_line(ruled)))
    path = _directory(manifest) / Export.METRICS
    if path.is_file():
        evaluation = read_json(path)
        evaluated = evaluation.get("evaluated_model", "the published model")
        description = (
            f"Held-out validation metrics on {evaluation.get('n_users_evaluated', 0):,} users, model vs "
            f"popularity baseline. Evaluated model: {evaluated}"
        )
        out.append(Artifact("wmf-metrics", description, table=metrics_rows(evaluation)))
    return out


def figures(manifest: dict[str, Any]) -> dict[str, Path]:
    curve = _directory(manifest) / Export.LOSS_CURVE
    return {"Training loss": curve} if curve.is_file() else {}


def metrics_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric: the model and its standard error beside the popularity baseline."""
    model, popular, stderr = (metrics.get(part, {}) for part in ("model", "popularity", "stderr"))
    return [
        {
            "metric": name,
            "model": round(model[name], 5),
            "stderr": round(stderr[name], 5) if name in stderr else None,
            "popularity": round(popular.get(name, 0.0), 5),
        }
        for name in sorted(model, key=_metric_order)
    ]


def _metric_order(name: str) -> tuple[str, int]:
    kind, _, k = name.partition("@")
    return kind, int(k) if k.isdigit() else 0


def _directory(manifest: dict[str, Any]) -> Path:
    return Path(manifest["outputs"]["recommendations"]["path"]).parent
