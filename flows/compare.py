"""The optimizer study's flow: `wmf compare` on the published index, published like a stage."""

from __future__ import annotations

from prefect import flow

from flows.params import PipelineOptions, RunOptions
from flows.pipeline import search
from wmf.pipeline.summary import RunSummary


@flow(name="wmf-compare")
def compare(
    data: str,
    raw: str | None = None,
    config: PipelineOptions | None = None,
    run: RunOptions | None = None,
    force: bool = False,
    wait: bool = False,
    parallel: int = 0,
) -> RunSummary:
    """Train each optimizer of the `compare` options from the same factors on the published index.

    A study whose index, options and code are unchanged comes back Cached, unless `force`.
    `raw` is unused (the study reads the published index); `parallel`: Dask workers.
    """
    return search("compare", data, raw, config, run, force, wait, parallel)
