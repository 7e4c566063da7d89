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

from pathlib import Path
from typing import Any

from prefect import Task, task
from prefect.client.schemas.objects import TaskRun
from prefect.logging import get_run_logger
from prefect.states import State

from wmf import stages
from wmf.errors import WmfError


def is_transient(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    """Retry only errors that another attempt may not meet."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError | TimeoutError) and not isinstance(exc, WmfError)


def _cache_key(_context: Any, parameters: dict[str, Any]) -> str:
    plan: stages.StagePlan = parameters["plan"]
    return f"wmf-{plan.stage}-{plan.key}"


def _run(plan: stages.StagePlan) -> dict[str, Any]:
    logger = get_run_logger()
    logger.info("building %s -> %s", plan.stage, plan.output)
    manifest = stages.execute(plan)
    for name, table in manifest["outputs"].items():
        logger.info("%s: %s rows in %s", name, f"{table['rows']:,}", table["path"])
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
