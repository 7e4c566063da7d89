"""What a run shows in the Prefect UI: the run summary, each stage's artifacts, the last nights.

Plain functions of the run summary and the stages' own descriptions (`wmf.stages.Artifact`,
from each stage's report module), published as Prefect artifacts here. Plots are embedded in
the markdown as data URIs: the Prefect UI cannot follow a link to a file on the machine that
ran the flow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from wmf.pipeline import registry
from wmf.pipeline.summary import RunSummary
from wmf.stages import Artifact, embedded_png

SUMMARY_KEY = "wmf-run-summary"
PROGRESS_KEY = "wmf-progress"
HISTORY_KEY = "wmf-history"
NIGHTS_SHOWN = 7


def stage_report(stage: str, hook: str) -> Any | None:
    """A stage's report function `hook` (artifacts, details, lines, figures), or None."""
    return getattr(registry.report(stage), hook, None)


def summary_markdown(summary: RunSummary, figures: dict[str, Path]) -> str:
    """Stage states and timings, every published table with its rows and path, the figures."""
    lines = [
        "# wmf pipeline run",
        "",
        f"- data: `{summary.data}`",
        f"- raw: `{summary.raw}`",
        "",
        "| stage | state | seconds | output |",
        "|---|---|---:|---|",
    ]
    for stage, result in summary.stages.items():
        where = f"`{result.directory}`" if result.directory else result.error or ""
        lines.append(f"| {stage} | {result.state} | {result.seconds:.1f} | {where} |")
    lines += ["", "## Published tables", "", "| stage | table | rows | path |", "|---|---|---:|---|"]
    for stage, result in summary.stages.items():
        for name, table in result.outputs.items():
            lines.append(f"| {stage} | {name} | {table['rows']:,} | `{table['path']}` |")
    for title, path in figures.items():
        lines += ["", f"## {title}", "", embedded_png(path, title)]
    return "\n".join(lines) + "\n"


def publish(artifact: Artifact) -> None:
    if artifact.markdown is not None:
        create_markdown_artifact(artifact.markdown, key=artifact.key, description=artifact.description)
    else:
        create_table_artifact(artifact.table, key=artifact.key, description=artifact.description)


def publish_stage(stage: str, manifest: dict[str, Any], state: str) -> None:
    """The artifacts a stage describes for its output."""
    artifacts = stage_report(stage, "artifacts")
    for artifact in artifacts(manifest, state) if artifacts else []:
        publish(artifact)


def publish_summary(summary: RunSummary, manifests: dict[str, dict[str, Any]]) -> None:
    """The run summary, with the figures the stages that ran point at."""
    figures: dict[str, Path] = {}
    for stage, manifest in manifests.items():
        if hook := stage_report(stage, "figures"):
            figures.update(hook(manifest))
    create_markdown_artifact(
        summary_markdown(summary, figures), key=SUMMARY_KEY, description="wmf run: stages, timings, tables"
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
