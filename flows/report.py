"""What a run shows in the Prefect UI: a markdown summary and the evaluation metrics.

Kept apart from the flow so the texts are plain functions of the run summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from wmf import store
from wmf.stages import LOSS_CURVE

SUMMARY_KEY = "wmf-run-summary"
METRICS_KEY = "wmf-metrics"
PROGRESS_KEY = "wmf-progress"


def summary_markdown(summary: dict[str, Any]) -> str:
    """Stage states and timings, then every published table with its rows and path."""
    lines = [
        "# wmf pipeline run",
        "",
        f"- data: `{summary['data']}`",
        f"- raw: `{summary.get('raw')}`",
        "",
        "| stage | state | seconds | output |",
        "|---|---|---:|---|",
    ]
    for stage, info in summary["stages"].items():
        where = f"`{info['directory']}`" if "directory" in info else info.get("error", "")
        lines.append(f"| {stage} | {info['state']} | {info['seconds']:.1f} | {where} |")
    lines += ["", "## Published tables", "", "| stage | table | rows | path |", "|---|---|---:|---|"]
    for stage, info in summary["stages"].items():
        for name, table in info.get("outputs", {}).items():
            lines.append(f"| {stage} | {name} | {table['rows']:,} | `{table['path']}` |")
    curve = _loss_curve(summary)
    if curve is not None:
        lines += ["", f"Training loss curve: [{curve.name}]({curve.as_uri()}) (`{curve}`)"]
    return "\n".join(lines) + "\n"


def _loss_curve(summary: dict[str, Any]) -> Path | None:
    export = summary["stages"].get("export", {})
    path = Path(export["directory"]) / LOSS_CURVE if "directory" in export else None
    return path if path is not None and path.is_file() else None


def metrics_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric: the model beside the popularity baseline."""
    model, popular = metrics.get("model", {}), metrics.get("popularity", {})
    return [
        {"metric": name, "model": round(model[name], 5), "popularity": round(popular.get(name, 0.0), 5)}
        for name in sorted(model, key=_metric_order)
    ]


def _metric_order(name: str) -> tuple[str, int]:
    kind, _, k = name.partition("@")
    return kind, int(k) if k.isdigit() else 0


def publish_artifacts(summary: dict[str, Any]) -> None:
    """The run summary, and the metrics table when the export stage produced one."""
    create_markdown_artifact(
        summary_markdown(summary), key=SUMMARY_KEY, description="wmf run: stages, timings, tables"
    )
    export = summary["stages"].get("export", {})
    metrics = Path(export["directory"]) / "metrics.json" if "directory" in export else None
    if metrics is not None and metrics.is_file():
        evaluation = store.read_json(metrics)
        create_table_artifact(
            metrics_rows(evaluation),
            key=METRICS_KEY,
            description="Held-out validation metrics, model vs popularity baseline. Evaluated model: "
            + evaluation.get("evaluated_model", "the published model"),
        )
