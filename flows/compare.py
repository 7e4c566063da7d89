"""The optimizer study's flow: `wmf compare` on the published index, published like a stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows import report
from flows.params import PipelineOptions, RunOptions, explicit
from flows.pipeline import locked, run_stages
from wmf import store

COMPARE_KEY = "wmf-compare"


@flow(name="wmf-compare")
def compare(
    data: str,
    config: PipelineOptions | None = None,
    run: RunOptions | None = None,
    force: bool = False,
    wait: bool = False,
) -> dict[str, Any]:
    """Train each optimizer of the `compare` options from the same factors on the published index.

    A study whose index, options and code are unchanged comes back Cached, unless `force`.
    """
    with locked(data, wait):
        forced = ["compare"] if force else None
        summary = run_stages(data, None, explicit(config), explicit(run), ["compare"], forced, False)
    directory = Path(summary["stages"]["compare"]["directory"])
    final = store.read_manifest(directory)["summary"]["final"]
    create_table_artifact(
        final, key=COMPARE_KEY, description="wmf compare: each optimizer's final loss, metrics"
    )
    plot = report.embedded_png(directory / "compare.png", "loss against iteration and seconds")
    create_markdown_artifact(f"# wmf compare\n\n{plot}\n", key=f"{COMPARE_KEY}-plot")
    return summary
