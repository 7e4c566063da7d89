"""The pipeline flow: plan, run (or take from cache) and publish each stage in order.

`run_stages` is the one loop every flow runs (the nightly pipeline, a search, the optimizer
study): it knows stages only through the registry, and asks `wmf.pipeline.runner` (through
the stage task) whether each is Cached.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

# Every run draws its trend (wmf.pipeline.history): matplotlib comes with the flow, so the CLI
# imports it while Prefect's temporary server boots (flows.server) rather than after.
import matplotlib.figure  # noqa: F401
from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger

from flows import report
from flows.params import PipelineOptions, RunOptions, explicit
from tasks.stages import stage_task
from wmf import configfile
from wmf.config import PipelineConfig, RunConfig
from wmf.errors import WmfError
from wmf.layout import LATEST
from wmf.pipeline import history, runner
from wmf.pipeline.outputs import DamagedOutputError
from wmf.pipeline.plan import StagePlan, plan
from wmf.pipeline.registry import PIPELINE_NAMES
from wmf.pipeline.summary import RunSummary, StageResult
from wmf.store import exclusive


class PipelineFailed(RuntimeError):
    """A stage failed; carries the summary of the stages so far."""

    def __init__(self, summary: RunSummary) -> None:
        super().__init__(summary.message)
        self.summary = summary


def record_failure(_flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure hook: the failed night's row in DATA/history (stage, message, time)."""
    exc = state.result(raise_on_failure=False)
    params = flow_run.parameters
    summary = getattr(exc, "summary", None) or RunSummary(
        params["data"], params.get("raw"), error=str(exc) or state.message
    )
    history.record(Path(params["data"]), history.row(summary, "Failed"))


@flow(name="wmf-pipeline", on_failure=[record_failure])
def pipeline(
    data: str,
    raw: str | None = None,
    config: PipelineOptions | None = None,
    run: RunOptions | None = None,
    only: list[str] | None = None,
    force: list[str] | None = None,
    wait: bool = False,
    parallel: bool = False,
    config_file: str | None = None,
) -> RunSummary:
    """Run `only` (default: every) stage in order, each reading its upstream's published output.

    A stage whose inputs, parameters and code are unchanged comes back "Cached";
    stages in `force` run again regardless. DATA is locked for the whole run, so
    a second pipeline on the same DATA waits (`wait`) or fails at once.
    `parallel`: the flow runs on a Dask task runner, so stages spread their parts over it.
    `config_file`: a TOML file of options by section, read now, so a deployment follows
    its edits; `config` and `run` override it, and it overrides the defaults.
    """
    options, orchestration = explicit(config), explicit(run)
    if config_file is not None:
        get_run_logger().info("options from %s", config_file)
        merged = configfile.merge(configfile.load(config_file), options, {"run": orchestration})
        orchestration = merged.pop("run", {})
        options = merged
    with locked(data, wait):
        names = list(only or PIPELINE_NAMES)
        summary = run_stages(data, raw, options, orchestration, names, force, 2 if parallel else 0)
        runs = history.record(Path(data), history.row(summary, "Completed"))
        report.publish_history(runs, history.trend_path(Path(data)))
        return summary


@contextlib.contextmanager
def locked(data: str, wait: bool) -> Iterator[None]:
    """Hold DATA's lock, then remove what killed runs left behind (safe only under the lock)."""
    with exclusive(Path(data), wait=wait):
        for path in runner.clean_stale(Path(data)):
            get_run_logger().info("removed %s, left by an interrupted run", path)
        yield


def run_stages(
    data: str,
    raw: str | None,
    options: dict[str, Any],
    orchestration: dict[str, Any],
    names: list[str],
    force: list[str] | None,
    workers: int,
) -> RunSummary:
    """Plan, run and publish `names` in order; `workers`: the Dask cluster's, 0 without one.

    A stage that finds an output it reads damaged (changed on disk since it was checked as
    Cached) has that output rebuilt, when its stage ran earlier in this run, then runs again.
    """
    logger = get_run_logger()
    cfg, run_cfg = PipelineConfig.from_dict(options), RunConfig(**orchestration)
    summary = RunSummary(data, raw)
    progress_id = create_progress_artifact(0.0, key=report.PROGRESS_KEY, description="wmf stages done")
    plans: dict[str, StagePlan] = {}
    manifests: dict[str, dict[str, Any]] = {}
    for done, name in enumerate(names):
        share = {"id": progress_id, "start": 100 * done / len(names), "end": 100 * (done + 1) / len(names)}
        started = time.perf_counter()
        forced = name in (force or ())
        for attempt in (1, 2):
            try:
                plans[name] = plan(name, Path(data), cfg, None if raw is None else Path(raw))
            except WmfError as exc:
                fail(name, exc, summary, 0.0)
            task = stage_task(name, run_cfg.retries, run_cfg.retry_delay_seconds)
            state = task_state(task, plans[name], forced, share, workers)
            exc = None if not state.is_failed() else state.result(raise_on_failure=False)
            if isinstance(exc, DamagedOutputError) and exc.stage in manifests and attempt == 1:
                logger.warning("%s", exc)
                damaged = stage_task(exc.stage, run_cfg.retries, run_cfg.retry_delay_seconds)
                rebuilt = task_state(damaged, plans[exc.stage], True, None, workers)
                if rebuilt.is_failed():
                    fail(exc.stage, rebuilt.result(raise_on_failure=False), summary, 0.0)
                summary.stages[exc.stage].state = "Completed"
                continue
            break
        seconds = round(time.perf_counter() - started, 3)
        if exc is not None:
            fail(name, exc, summary, seconds)
        try:
            manifest = runner.publish(plans[name], keep=run_cfg.keep_stage_outputs)
        except WmfError as exc:  # e.g. an ingest that shrank too much: nothing is published
            fail(name, exc, summary, seconds)
        manifests[name] = manifest
        details = report.stage_report(name, "details")
        published = plans[name].root / LATEST
        summary.stages[name] = StageResult.from_manifest(
            state.name,
            seconds,
            manifest,
            str(plans[name].output),
            details(manifest, published) if details else {},
        )
        report.publish_stage(name, manifest, state.name)
        logger.info("%s %s in %.1f s (%s)", name, state.name, seconds, plans[name].output)
        if lines := report.stage_report(name, "lines"):
            for line in lines(summary.stages[name].details):
                logger.info("%s: %s", name, line)
        update_progress_artifact(progress_id, share["end"])
    report.publish_summary(summary, manifests)
    return summary


def task_state(task: Any, stage_plan: StagePlan, forced: bool, share: Any, workers: int) -> Any:
    """Run a stage task and wait for its final state."""
    future = task.submit(stage_plan, forced, share, workers)
    future.wait()
    return future.state


def fail(stage: str, exc: BaseException, summary: RunSummary, seconds: float) -> NoReturn:
    """Publish what ran so far, then fail the flow with the stage's message."""
    summary.stages[stage] = StageResult("Failed", seconds, error=str(exc))
    report.publish_summary(summary, {})
    raise PipelineFailed(summary) from exc
