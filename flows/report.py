"""What a run shows in the Prefect UI: a markdown summary and the evaluation metrics.

Kept apart from the flow so the texts are plain functions of the run summary.
Plots are embedded in the markdown as data URIs: the Prefect UI cannot follow a
link to a file on the machine that ran the flow.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from wmf import store
from wmf.stages import LOSS_CURVE

SUMMARY_KEY = "wmf-run-summary"
METRICS_KEY = "wmf-metrics"
PROGRESS_KEY = "wmf-progress"
TUNE_KEY = "wmf-tune"
TRIALS_KEY = "wmf-tune-trials"
HISTORY_KEY = "wmf-history"
NIGHTS_SHOWN = 7


def embedded_png(path: Path, title: str) -> str:
    """Markdown showing the PNG inline, followed by where the file is."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"![{title}](data:image/png;base64,{data})\n\n`{path}`"


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
        lines += ["", "## Training loss", "", embedded_png(curve, "training loss curve")]
    return "\n".join(lines) + "\n"


def _loss_curve(summary: dict[str, Any]) -> Path | None:
    export = summary["stages"].get("export", {})
    path = Path(export["directory"]) / LOSS_CURVE if "directory" in export else None
    return path if path is not None and path.is_file() else None


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
            description=f"Held-out validation metrics on {evaluation.get('n_users_evaluated', 0):,} users, "
            "model vs popularity baseline. Evaluated model: "
            + evaluation.get("evaluated_model", "the published model"),
        )


def tune_markdown(manifest: dict[str, Any], state: str) -> str:
    """The best options of a search, ready to paste into a config file, and its plot."""
    from wmf import configfile

    summary = manifest["summary"]
    directory = Path(manifest["outputs"]["trials"]["path"]).parent
    lines = [
        "# wmf tune",
        "",
        f"- state: {state}; trials: {summary['states']}",
        f"- best: trial {summary['best_trial']}, validation {summary['metric']} {summary['best_value']:.4f}",
        f"- use it: `wmf run --config {directory / summary['files']['best']}`",
        "",
        "```toml",
        configfile.dumps(summary["best"]).strip(),
        "```",
        "",
        embedded_png(directory / summary["files"]["plot"], "tune history"),
    ]
    return "\n".join(lines) + "\n"


def publish_tune_artifacts(manifest: dict[str, Any], state: str) -> None:
    """The best options (markdown, with the plot inline) and the table of trials."""
    import polars as pl

    create_markdown_artifact(
        tune_markdown(manifest, state), key=TUNE_KEY, description="wmf tune: best options"
    )
    trials = pl.read_parquet(manifest["outputs"]["trials"]["path"])
    create_table_artifact(
        trials.with_columns(pl.col(pl.Float64).round(6)).to_dicts(),
        key=TRIALS_KEY,
        description=f"wmf tune: one row per trial (validation {manifest['summary']['metric']})",
    )


def history_markdown(runs: Any, trend: Path) -> str:
    """The last nights side by side (one column per run), then the trend plot inline."""
    last = runs.tail(NIGHTS_SHOWN)
    fields = (
        "state", "until", "ratings", "users", "warm_start", "train_seconds", "recall@20", "ndcg@100",
        "share_changed@10", "jaccard@10", "rbo", "new_users", "new_movies", "failed_stage",
    )  # fmt: skip
    stamps = [t.strftime("%Y-%m-%d %H:%M") for t in last["finished_at"]]
    lines = [
        "# wmf: the last nights",
        "",
        "| | " + " | ".join(stamps) + " |",
        "|---" * (len(stamps) + 1) + "|",
    ]
    for name in fields:
        lines.append(f"| {name} | " + " | ".join(_cell(v) for v in last[name].to_list()) + " |")
    return "\n".join(lines) + "\n\n" + embedded_png(trend, "metrics and drift over nights") + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def publish_history(runs: Any, trend: Path) -> None:
    create_markdown_artifact(history_markdown(runs, trend), key=HISTORY_KEY, description="wmf run history")
