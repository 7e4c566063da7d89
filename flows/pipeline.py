"""The pipeline flow: plan, run (or take from cache) and publish each stage in order."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

# Every run draws its trend (wmf.history): matplotlib comes with the flow, so the CLI imports
# it while Prefect's temporary server boots (flows.server) rather than after.
import matplotlib.figure  # noqa: F401
from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger

from flows import report
from flows.params import PipelineOptions, RunOptions, explicit
from tasks.stages import stage_task
from wmf import configfile, history, stages
from wmf.config import PipelineConfig, RunConfig
from wmf.errors import WmfError
from wmf.store import exclusive


class PipelineFailed(RuntimeError):
    """A stage failed; carries the summary of the stages so far."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


def outputs(manifest: dict[str, Any]) -> dict[str, Any]:
    """Each published table's path and rows, for a run summary."""
    return {
        name: {"path": table["path"], "rows": table["rows"]} for name, table in manifest["outputs"].items()
    }


def record_failure(_flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure hook: the failed night's row in DATA/history (stage, message, time)."""
    exc = state.result(raise_on_failure=False)
    summary = getattr(exc, "summary", {})
    failed = [stage for stage, info in summary.get("stages", {}).items() if info["state"] == "Failed"]
    entry = history.row(summary, "Failed", failed[0] if failed else None, str(exc) or state.message)
    history.record(Path(flow_run.parameters["data"]), entry)


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
) -> dict[str, Any]:
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
        summary = run_stages(data, raw, options, orchestration, only, force, parallel)
        runs = history.record(Path(data), history.row(summary, "Completed"))
        report.publish_history(runs, history.runs_path(Path(data)).parent / history.TREND)
        return summary


@contextlib.contextmanager
def locked(data: str, wait: bool) -> Iterator[None]:
    """Hold DATA's lock, then remove what killed runs left behind (safe only under the lock)."""
    with exclusive(Path(data), wait=wait):
        for path in stages.clean_stale(Path(data)):
            get_run_logger().info("removed %s, left by an interrupted run", path)
        yield


def run_stages(
    data: str,
    raw: str | None,
    config: dict[str, Any] | None,
    run: dict[str, Any] | None,
    only: list[str] | None,
    force: list[str] | None,
    parallel: bool,
) -> dict[str, Any]:
    logger = get_run_logger()
    cfg = PipelineConfig.from_dict(config or {})
    run_cfg = RunConfig(**(run or {}))
    results = Path(data) / ".prefect-results"
    summary: dict[str, Any] = {"data": str(data), "raw": raw, "stages": {}}
    todo = list(only or stages.STAGES)
    progress_id = create_progress_artifact(0.0, key=report.PROGRESS_KEY, description="wmf stages done")
    for done, stage in enumerate(todo):
        started = time.perf_counter()
        try:
            plan = stages.plan(stage, Path(data), cfg, None if raw is None else Path(raw))
        except WmfError as exc:
            fail(stage, exc, summary, 0.0)
        task = stage_task(stage, results, run_cfg.retries, run_cfg.retry_delay_seconds)
        refresh = stage in (force or ()) or not plan.is_built
        share = {"id": progress_id, "start": 100 * done / len(todo), "end": 100 * (done + 1) / len(todo)}
        future = task.with_options(refresh_cache=refresh).submit(plan, share, parallel)
        future.wait()
        state = future.state
        seconds = round(time.perf_counter() - started, 3)
        if state.is_failed():
            fail(stage, state.result(raise_on_failure=False), summary, seconds)
        keep = cfg.export.keep if stage == "export" else run_cfg.keep_stage_outputs
        try:
            manifest = stages.publish(plan, keep=keep)
        except WmfError as exc:  # e.g. an ingest that shrank too much: nothing is published
            fail(stage, exc, summary, seconds)
        summary["stages"][stage] = {
            "state": state.name,
            "seconds": seconds,
            "key": plan.key,
            "directory": str(plan.output),
            "outputs": outputs(manifest),
        }
        logger.info("%s %s in %.1f s (%s)", stage, state.name, seconds, plan.output)
        update_progress_artifact(progress_id, share["end"])
    report.publish_artifacts(summary)
    return summary


def fail(stage: str, exc: BaseException, summary: dict[str, Any], seconds: float) -> NoReturn:
    """Publish what ran so far, then fail the flow with the stage's message."""
    summary["stages"][stage] = {"state": "Failed", "seconds": seconds, "error": str(exc)}
    report.publish_artifacts(summary)
    raise PipelineFailed(f"stage {stage} failed: {exc}", summary) from exc
