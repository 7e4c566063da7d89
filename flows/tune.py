"""The search flow: the cached ingest and index stages, then an Optuna search published like a stage."""

from __future__ import annotations

from prefect import flow

from flows.params import PipelineOptions, RunOptions
from flows.pipeline import search
from wmf.pipeline.summary import RunSummary


@flow(name="wmf-tune")
def tune(
    data: str,
    raw: str | None = None,
    config: PipelineOptions | None = None,
    run: RunOptions | None = None,
    force: bool = False,
    wait: bool = False,
    parallel: int = 0,
) -> RunSummary:
    """Search the train options on a validation split of the published index's training data.

    The ingest and index stages run first (Cached when unchanged); a search whose
    inputs, options and code are unchanged is Cached too, unless `force`.
    `parallel`: trials at once on the flow's Dask task runner (0: one after another).
    """
    return search("tune", data, raw, config, run, force, wait, parallel)
