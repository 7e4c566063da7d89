"""A build's independent jobs as Prefect tasks, so the UI lists each with its state and log
(a search's trials); with Dask they run on the cluster, one per worker at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.logging import get_run_logger


@task(task_run_name="{job.name}")
def unit(function: Callable[[Any], Any], job: Any) -> Any:
    """Run one job; log its one-line description when it has one (`job.describe(result)`)."""
    result = function(job)
    if hasattr(job, "describe"):
        get_run_logger().info(job.describe(result))
    return result


def run_units(kind: str) -> Callable[[Callable[[Any], Any], list[Any]], list[Any]]:
    """A mapper that submits a batch of jobs as tasks named after `kind` and waits for all."""

    def mapper(function: Callable[[Any], Any], jobs: list[Any]) -> list[Any]:
        futures = [unit.with_options(name=kind).submit(function, job) for job in jobs]
        return [future.result() for future in futures]

    return mapper
