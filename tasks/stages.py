"""One Prefect task per stage, each a thin wrapper around `wmf.stages.execute`.

Caching: the cache key is the stage plan's key (code version, parameters and
input fingerprints, computed in `wmf.stages.plan`), so a changed raw file,
parameter or helper module re-runs the stage. Prefect's cache record knows
nothing of our files, so the flow refreshes the cache when the output a record
points at is gone.

Retries: only transient errors (OSError such as a flaky disk or network share,
timeouts) are retried, with exponential back-off; bad input and programming
errors fail at once with their message.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from prefect import Task, task
from prefect.artifacts import create_table_artifact, update_progress_artifact
from prefect.client.schemas.objects import TaskRun
from prefect.logging import get_run_logger
from prefect.states import State

from wmf import stages
from wmf.errors import WmfError

QUALITY_KEY = "wmf-data-quality"


def is_transient(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    """Retry only errors that another attempt may not meet."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError | TimeoutError) and not isinstance(exc, WmfError)


def _cache_key(_context: Any, parameters: dict[str, Any]) -> str:
    plan: stages.StagePlan = parameters["plan"]
    return f"wmf-{plan.stage}-{plan.key}"


def _run(
    plan: stages.StagePlan, progress: dict[str, Any] | None = None, parallel: bool = False
) -> dict[str, Any]:
    """Build the stage; `progress` ({"id", "start", "end"}, in percent) is moved along per iteration.

    `parallel`: the task runs on a Dask cluster (prefect-dask) and spreads its parts over it.
    """
    logger = get_run_logger()
    logger.info("building %s -> %s", plan.stage, plan.output)
    if done := stages.checkpoint_iteration(plan):
        logger.info("resuming training from its checkpoint after iteration %d", done)
    on_iteration = None
    if plan.stage == "train":
        planned = {"train": int(plan.config["iterations"]), "refit": int(plan.config["refit_iterations"])}
        total = max(sum(planned.values()), 1)

        def on_iteration(record: dict[str, Any]) -> None:
            phase, it = record["phase"], record["iteration"]
            logger.info("%s iteration %d/%d loss %.6g", phase, it, planned[phase], record["loss"])
            if progress is not None:
                done = it + (planned["train"] if phase == "refit" else 0)
                share = progress["end"] - progress["start"]
                value = progress["start"] + share * min(done / total, 1.0)
                update_progress_artifact(progress["id"], round(value, 1))

    with contextlib.ExitStack() as stack:
        mapper = None
        if parallel:
            from prefect_dask import get_dask_client

            client = stack.enter_context(get_dask_client())

            def mapper(function: Any, jobs: list[Any]) -> list[Any]:
                return client.gather(client.map(function, jobs, pure=False))

        manifest = stages.execute(plan, on_iteration=on_iteration, mapper=mapper)
    for name, table in manifest["outputs"].items():
        logger.info("%s: %s rows in %s", name, f"{table['rows']:,}", table["path"])
    if quality := manifest["summary"].get("quality"):
        for finding in quality["findings"]:
            logger.warning("data quality: %s", finding)
        create_table_artifact(quality["files"], key=QUALITY_KEY, description="wmf ingest: raw files")
    return manifest


def stage_task(stage: str, results: Path, retries: int, retry_delay: float) -> Task[..., Any]:
    """The Prefect task of `stage`, storing its cache records under `results`."""
    return task(
        _run,
        name=stage,
        task_run_name=stage,
        cache_key_fn=_cache_key,
        persist_result=True,
        result_storage=results,
        retries=retries,
        retry_delay_seconds=[retry_delay * 2**i for i in range(max(retries, 1))],
        retry_condition_fn=is_transient,
    )
