"""The search flow: the cached ingest and index stages, then an Optuna search published like a stage."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from flows import report
from flows.params import PipelineOptions, RunOptions, explicit
from flows.pipeline import fail, locked, outputs, run_stages
from tasks.tune import run_trials
from wmf import stages, store
from wmf.config import PipelineConfig, RunConfig


@flow(name="wmf-tune")
def tune(
    data: str,
    raw: str | None = None,
    config: PipelineOptions | None = None,
    run: RunOptions | None = None,
    force: bool = False,
    wait: bool = False,
    parallel: int = 0,
) -> dict[str, Any]:
    """Search the train options on a validation split of the published index's training data.

    The ingest and index stages run first (Cached when unchanged); a search whose
    inputs, options and code are unchanged is Cached too, unless `force`.
    `parallel`: trials at once on the flow's Dask task runner (0: one after another).
    """
    options, orchestration = explicit(config), explicit(run)
    with locked(data, wait):
        summary = run_stages(data, raw, options, orchestration, ["ingest", "index"], None, parallel > 0)
        return _search(
            data,
            raw,
            PipelineConfig.from_dict(options),
            RunConfig(**orchestration),
            force,
            parallel,
            summary,
        )


def _search(
    data: str,
    raw: str | None,
    cfg: PipelineConfig,
    run_cfg: RunConfig,
    force: bool,
    parallel: int,
    summary: dict[str, Any],
) -> dict[str, Any]:
    logger = get_run_logger()
    started = time.perf_counter()
    plan = stages.plan("tune", Path(data), cfg, None if raw is None else Path(raw))
    state = "Cached"
    if force or not plan.is_built:
        logger.info(
            "searching %d trials -> %s (study %s)", cfg.tune.trials, plan.output, stages.study_journal(plan)
        )
        try:
            stages.execute(plan, mapper=run_trials, parallel=max(parallel, 1))
        except Exception as exc:
            fail("tune", exc, summary, round(time.perf_counter() - started, 3))
        state = "Completed"
    manifest = stages.publish(plan, keep=run_cfg.keep_stage_outputs)
    summary["stages"]["tune"] = {
        "state": state,
        "seconds": round(time.perf_counter() - started, 3),
        "key": plan.key,
        "directory": str(plan.output),
        "outputs": outputs(manifest),
        "best": manifest["summary"]["best"],
        "best_value": manifest["summary"]["best_value"],
        "metric": manifest["summary"]["metric"],
        "best_toml": str(_published(data) / manifest["summary"]["files"]["best"]),
    }
    report.publish_tune_artifacts(manifest, state)
    logger.info(
        "tune %s: best %s %.4f, options in %s",
        state,
        cfg.tune.metric,
        manifest["summary"]["best_value"],
        summary["stages"]["tune"]["best_toml"],
    )
    return summary


def _published(data: str) -> Path:
    """The stable path of the published search (a symlink swapped by each publish)."""
    return store.stage_root(Path(data), stages.DIRECTORY["tune"]) / store.LATEST
