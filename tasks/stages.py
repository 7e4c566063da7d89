"""One Prefect task per stage run, a thin wrapper around `wmf.pipeline.runner.run`.

Whether a stage is Cached is the runner's decision alone (its output, found by its key, is
complete and its files match their fingerprints): the task returns Prefect's Completed state
named "Cached" then, and Prefect keeps no cache records of its own.

Retries: only transient errors (OSError such as a flaky disk or network share, timeouts)
are retried, with exponential back-off; bad input and programming errors fail at once with
their message.
"""

from __future__ import annotations

import contextlib
from typing import Any

from prefect import Task, task
from prefect.artifacts import update_progress_artifact
from prefect.client.schemas.objects import TaskRun
from prefect.logging import get_run_logger
from prefect.states import Completed, State

from tasks.units import run_units
from wmf.errors import WmfError
from wmf.pipeline import runner
from wmf.pipeline.plan import StagePlan


def is_transient(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    """Retry only errors that another attempt may not meet."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError | TimeoutError) and not isinstance(exc, WmfError)


def _run(
    plan: StagePlan, force: bool = False, progress: dict[str, Any] | None = None, workers: int = 0
) -> State[dict[str, Any]]:
    """Run the stage; `progress` ({"id", "start", "end"}, in percent) moves along with the build.

    `workers`: the flow runs on a Dask cluster of that many workers (prefect-dask, 0 without),
    over which the build spreads its parts.
    """
    logger = get_run_logger()

    def report(done: float, line: str | None) -> None:
        if line:
            logger.info(line)
        if progress is not None:
            share = progress["end"] - progress["start"]
            update_progress_artifact(progress["id"], round(progress["start"] + share * done, 1))

    with contextlib.ExitStack() as stack:
        mapper: Any = map
        if plan.spec.units is not None:
            mapper = run_units(plan.spec.units)
        elif workers:
            from prefect_dask import get_dask_client

            client = stack.enter_context(get_dask_client())

            def mapper(function: Any, jobs: list[Any]) -> list[Any]:
                return client.gather(client.map(function, jobs, pure=False))

        outcome = runner.run(
            plan, force, report=report, mapper=mapper, parallel=max(workers, 1), distributed=workers > 0
        )
    manifest = outcome.manifest
    if outcome.state == "Completed":
        if outcome.note:
            logger.warning(outcome.note)
        for warning in manifest["summary"].get("warnings", []):
            logger.warning("%s: %s", plan.stage, warning)
        for name, table in manifest["outputs"].items():
            logger.info("%s: %s rows in %s", name, f"{table['rows']:,}", table["path"])
    return Completed(name=outcome.state, data=manifest, message=f"{plan.stage} {outcome.state}")


def stage_task(stage: str, retries: int, retry_delay: float) -> Task[..., Any]:
    return task(
        _run,
        name=stage,
        task_run_name=stage,
        retries=retries,
        retry_delay_seconds=[retry_delay * 2**i for i in range(max(retries, 1))],
        retry_condition_fn=is_transient,
    )
