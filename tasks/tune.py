"""Each trial of a search as a Prefect task, so the UI lists trials with their states and logs.

`run_trials` is the mapper the search loop (`wmf.tune.tune`) runs its batches
through: the batch's trials are submitted to the flow's task runner (local
threads, or the Dask cluster with `--task-runner dask`) and their results
gathered in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.logging import get_run_logger

from wmf.tune import TrialJob, run_trial


@task(name="trial", task_run_name="trial-{job.number}")
def trial_task(job: TrialJob) -> dict[str, Any]:
    result = run_trial(job)
    train = job.train
    get_run_logger().info(
        "trial %d %s: %s %.4f at iteration %d of %d (%.1f s); factors %d, w0 %.3g, reg %.3g%s, alpha %.2f",
        job.number,
        result["state"],
        job.tune["metric"],
        result["value"] or 0.0,
        result["best_iteration"],
        result["iterations"],
        result["seconds"],
        train["factors"],
        train["unobserved_weight"],
        train["regularization"],
        " (scaled)" if train["scale_regularization"] else "",
        train["alpha"],
    )
    return result


def run_trials(_function: Callable[[TrialJob], dict[str, Any]], jobs: list[TrialJob]) -> list[dict[str, Any]]:
    """Submit a batch of trials as Prefect tasks and wait for all of them."""
    futures = [trial_task.submit(job) for job in jobs]
    return [future.result() for future in futures]
