"""The pipeline flow: plan, run (or take from cache) and publish each stage in order.

`run_stages` is the one loop every flow runs (the nightly pipeline, a search, the optimizer
study): it knows stages only through the registry, and asks `wmf.pipeline.runner` (through
the stage task) whether each is Cached.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
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
from wmf import configfile, store
from wmf.config import PipelineConfig, RunConfig
from wmf.errors import DamagedOutputError, WmfError
from wmf.layout import LATEST
from wmf.pipeline import history, runner
from wmf.pipeline.plan import StagePlan, plan
from wmf.pipeline.registry import PIPELINE_NAMES, STAGES, upstream
from wmf.pipeline.summary import RunSummary, StageResult
from wmf.store import DataLockedError, exclusive


class PipelineFailed(RuntimeError):
    """A stage failed; carries the summary of the stages so far."""

    def __init__(self, summary: RunSummary) -> None:
        super().__init__(summary.message)
        self.summary = summary


def record_failure(_flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure hook: the failed night's row in DATA/history (stage, message, time)."""
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, DataLockedError):  # refused before it began: not a night
        return
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
        history.begin(Path(data))
        names = list(only or PIPELINE_NAMES)
        summary = run_stages(
            data, raw, options, orchestration, names, force, 1 if parallel else 0, history.at_stage
        )
        runs = history.record(Path(data), history.row(summary, "Completed"))
        report.publish_history(runs, history.trend_path(Path(data)))
        return summary


def search(
    name: str,
    data: str,
    raw: str | None,
    config: PipelineOptions | None,
    run: RunOptions | None,
    force: bool,
    wait: bool,
    parallel: int,
) -> RunSummary:
    """A search's flow (`flows/tune.py`, `flows/compare.py`): the pipeline stages it reads run
    first when it says so (Cached when unchanged), then the search, again with `force`.
    `parallel`: Dask workers (0: none), its jobs at once."""
    stage = STAGES[name]
    first = [s.name for s in upstream(stage)] if stage.runs_upstream else []
    with locked(data, wait):
        forced = [name] if force else None
        return run_stages(data, raw, explicit(config), explicit(run), [*first, name], forced, parallel)


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
    on_stage: Callable[[Path, str], None] = lambda _data, _stage: None,
) -> RunSummary:
    """Plan, run and publish `names` in order; `workers`: the Dask cluster's, 0 without one;
    `on_stage(DATA, name)` as each stage begins.

    A stage that finds an output it reads damaged (changed on disk since it was checked as
    Cached) runs again once the damage is dealt with: an upstream output built earlier in this
    run is rebuilt; its own earlier output (a warm start) is left out.
    """
    logger = get_run_logger()
    run_cfg = RunConfig(**orchestration)
    stage = _StageRunner(data, raw, PipelineConfig.from_dict(options), run_cfg, workers)
    summary = RunSummary(data, raw)
    progress_id = create_progress_artifact(0.0, key=report.PROGRESS_KEY, description="wmf stages done")
    for done, name in enumerate(names):
        on_stage(Path(data), name)
        share = {"id": progress_id, "start": 100 * done / len(names), "end": 100 * (done + 1) / len(names)}
        started = time.perf_counter()
        state, exc = stage.run(name, name in (force or ()), share, summary)
        seconds = round(time.perf_counter() - started, 3)
        if exc is not None:
            fail(name, exc, summary, seconds)
        try:
            manifest = runner.publish(stage.plans[name], keep=run_cfg.keep_stage_outputs)
        except WmfError as exc:  # e.g. an ingest that shrank too much: nothing is published
            fail(name, exc, summary, seconds)
        stage.manifests[name] = manifest
        details = report.stage_report(name, "details")
        published = stage.plans[name].root / LATEST
        summary.stages[name] = StageResult.from_manifest(
            state.name,
            seconds,
            manifest,
            str(stage.plans[name].output),
            details(manifest, published) if details else {},
        )
        report.publish_stage(name, manifest, state.name)
        logger.info("%s %s in %.1f s (%s)", name, state.name, seconds, stage.plans[name].output)
        if lines := report.stage_report(name, "lines"):
            for line in lines(summary.stages[name].details):
                logger.info("%s: %s", name, line)
        update_progress_artifact(progress_id, share["end"])
    report.publish_summary(summary, stage.manifests)
    return summary


class _StageRunner:
    """Plans and runs one stage at a time as a Prefect task, remembering what this run built."""

    def __init__(self, data: str, raw: str | None, config: PipelineConfig, run: RunConfig, workers: int):
        self.data, self.raw, self.config, self.run_config, self.workers = data, raw, config, run, workers
        self.plans: dict[str, StagePlan] = {}
        self.manifests: dict[str, dict[str, Any]] = {}

    def run(
        self, name: str, forced: bool, share: dict[str, Any], summary: RunSummary
    ) -> tuple[Any, BaseException | None]:
        """(the stage task's final state, its error or None), damage dealt with once."""
        state = self.attempt(name, forced, share, summary)
        exc = _error(state)
        if isinstance(exc, DamagedOutputError):
            get_run_logger().warning("%s", exc)
            if exc.stage == name:  # its own earlier output: plan again, reading every byte of it
                state = self.attempt(name, forced, share, summary, distrust=True)
            elif exc.stage in self.manifests and exc.directory == str(self.plans[exc.stage].output):
                built, started = self.plans[exc.stage], time.perf_counter()
                if (failure := _error(self.task(built, True, None))) is not None:
                    fail(exc.stage, failure, summary, 0.0)
                self.manifests[exc.stage] = store.read_manifest(built.output)
                result = summary.stages[exc.stage]
                result.state, result.seconds = "Completed", result.seconds + time.perf_counter() - started
                state = self.attempt(name, forced, share, summary)
            exc = _error(state)
        return state, exc

    def attempt(
        self, name: str, forced: bool, share: dict[str, Any], summary: RunSummary, distrust: bool = False
    ) -> Any:
        try:
            raw = None if self.raw is None else Path(self.raw)
            self.plans[name] = plan(name, Path(self.data), self.config, raw, distrust=distrust)
        except WmfError as exc:
            fail(name, exc, summary, 0.0)
        for note in self.plans[name].notes:
            get_run_logger().warning("%s", note)
        return self.task(self.plans[name], forced, share)

    def task(self, stage_plan: StagePlan, forced: bool, share: dict[str, Any] | None) -> Any:
        """Run a stage task to its final state. A stage with jobs of its own (a search's trials)
        runs in the flow's thread and submits them: on Dask, it must not hold a worker while its
        jobs wait for one."""
        task = stage_task(stage_plan.stage, self.run_config.retries, self.run_config.retry_delay_seconds)
        if stage_plan.spec.units is not None:
            return task(stage_plan, forced, share, self.workers, return_state=True)
        future = task.submit(stage_plan, forced, share, self.workers)
        future.wait()
        return future.state


def _error(state: Any) -> BaseException | None:
    """The error a task ended with (failed, crashed or cancelled), or None when it completed."""
    if state.is_completed():
        return None
    exc = state.result(raise_on_failure=False)
    return exc if isinstance(exc, BaseException) else RuntimeError(state.message or state.name)


def fail(stage: str, exc: BaseException, summary: RunSummary, seconds: float) -> NoReturn:
    """Publish what ran so far, then fail the flow with the stage's message."""
    summary.stages[stage] = StageResult("Failed", seconds, error=str(exc), error_type=type(exc).__name__)
    report.publish_summary(summary, {})
    raise PipelineFailed(summary) from exc
