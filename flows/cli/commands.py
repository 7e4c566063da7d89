"""What each `wmf` command does: run a flow (a stage, the pipeline, a search, nights), serve it,
or read what is published. Prefect is imported only by the commands that run flows."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.cli import output
from flows.cli.parser import build_parser, config_from, options, run_config_from
from flows.server import SERVER
from wmf.config import PipelineConfig, RunConfig
from wmf.errors import WmfError
from wmf.layout import LATEST, Export
from wmf.pipeline.registry import PIPELINE, PIPELINE_NAMES, SEARCHES, STAGES
from wmf.pipeline.summary import RunSummary

Command = Callable[[argparse.Namespace, list[str] | None], int]


def run_flow(flow: Any, dask: dict[str, Any] | None, **parameters: Any) -> tuple[bool, RunSummary]:
    """Run a flow to its end: (success, its summary; a failed run's has the stages so far)."""
    from flows.pipeline import PipelineFailed

    SERVER.ready()
    if dask is not None:
        flow = flow.with_options(task_runner=_dask_runner(**dask))
    state = flow(**parameters, return_state=True)
    if state.is_failed():
        exc = state.result(raise_on_failure=False)
        if isinstance(exc, PipelineFailed):
            return False, exc.summary
        return False, RunSummary(parameters["data"], parameters.get("raw"), error=str(exc))
    return True, state.result()


def run_pipeline(
    data: Path,
    raw: Path | None,
    config: PipelineConfig,
    run: RunConfig,
    only: list[str] | None = None,
    force: list[str] | None = None,
    wait: bool = False,
    dask: dict[str, Any] | None = None,
) -> tuple[bool, RunSummary]:
    """The pipeline flow; `dask`: {"address"} or {"workers"}."""
    from flows.pipeline import pipeline

    return run_flow(
        pipeline,
        dask,
        data=str(Path(data).resolve()),
        raw=None if raw is None else str(Path(raw).resolve()),
        config=config.to_dict(),
        run=dataclasses.asdict(run),
        only=only,
        force=force,
        wait=wait,
        parallel=dask is not None,
    )


def generate(args: argparse.Namespace, _argv: list[str] | None) -> int:
    from wmf.data.generate import generate

    print(json.dumps(generate(args.out, scale=args.scale, seed=args.seed), indent=2, default=str))
    return 0


def demo(args: argparse.Namespace, _argv: list[str] | None) -> int:
    from wmf.data.generate import generate
    from wmf.layout import Raw

    raw, data = args.out / "raw", args.out / "data"
    if not (raw / Raw.TITLES[0]).exists():
        print(f"generating a demo dataset (scale {args.scale}) in {raw}", file=sys.stderr)
        generate(raw, scale=args.scale, seed=0)
    ok, summary = run_pipeline(data, raw, PipelineConfig(), RunConfig())
    output.print_summary(summary, args.json)
    if ok and not args.json:
        output.show_demo_results(data / Export.DIRECTORY / LATEST)
    return _exit(ok, summary)


def run(args: argparse.Namespace, _argv: list[str] | None) -> int:
    """`wmf run`, and `wmf <stage>` (that stage alone, from the published outputs before it)."""
    only = [args.only] if args.command == "run" and args.only else None
    force = only
    if args.command == "run" and args.from_stage:
        force = list(PIPELINE_NAMES[PIPELINE_NAMES.index(args.from_stage) :])
    if args.command != "run":
        only = [args.command]
    config, orchestration = config_from(args), run_config_from(args)
    ok, summary = run_pipeline(
        args.data,
        getattr(args, "raw", None),
        config,
        orchestration,
        only,
        force,
        args.wait,
        _dask_options(args),
    )
    output.print_summary(summary, args.json)
    return _exit(ok, summary)


def search(args: argparse.Namespace, _argv: list[str] | None) -> int:
    """A search (tune, compare): its flow is `flows/<name>.py`'s function of that name."""
    flow = getattr(importlib.import_module(f"flows.{args.command}"), args.command)
    dask = _dask_options(args)
    ok, summary = run_flow(
        flow,
        dask,
        data=str(args.data.resolve()),
        raw=None if getattr(args, "raw", None) is None else str(args.raw.resolve()),
        config=config_from(args).to_dict(),
        run=dataclasses.asdict(run_config_from(args)),
        force=args.force,
        wait=args.wait,
        parallel=0 if dask is None else dask["workers"] or 2,
    )
    output.print_summary(summary, args.json)
    return _exit(ok, summary)


def replay(args: argparse.Namespace, _argv: list[str] | None) -> int:
    from flows.replay import nights, replay

    def runner(data: Path, raw: Path, night: PipelineConfig, orchestration: RunConfig) -> Any:
        return run_pipeline(data, raw, night, orchestration, wait=args.wait, dask=_dask_options(args))

    echo = (lambda text: print(text, file=sys.stderr)) if args.json else print
    days = nights(args.start, args.nights, args.every)
    ok, rows = replay(args.data, args.raw, config_from(args), run_config_from(args), days, runner, echo)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    return 0 if ok else 1


def serve(args: argparse.Namespace, argv: list[str] | None) -> int:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    from flows.pipeline import pipeline

    typed = build_parser(typed_only=True).parse_args(argv)
    pipeline.serve(
        name=args.name,
        cron=args.cron,
        # one night at a time: a late night's successor waits for it, never overlaps
        global_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        parameters={
            "raw": str(args.raw.resolve()),
            "data": str(args.data.resolve()),
            "config": {s.name: o for s in PIPELINE if (o := options(typed, s.config))},
            "config_file": None if args.config is None else str(args.config.resolve()),
            "wait": True,
        },
    )
    return 0


def status(args: argparse.Namespace, _argv: list[str] | None) -> int:
    from wmf.pipeline.status import status

    report = status(args.data, args.raw, config_from(args), verify=args.verify)
    output.print_status(report, args.json)
    damaged = any(entry.get("damaged") for entry in report.values())
    return 1 if damaged else 0


COMMANDS: dict[str, Command] = {
    "generate": generate,
    "demo": demo,
    "run": run,
    "replay": replay,
    "serve": serve,
    "status": status,
    **{stage.name: run for stage in PIPELINE},
    **{stage.name: search for stage in SEARCHES},
}
# Commands that run flows and end: they boot Prefect's temporary server at once (flows.server).
FLOW_COMMANDS = frozenset({"run", "replay", "demo", *STAGES})


def _exit(ok: bool, summary: RunSummary) -> int:
    if not ok:
        print(f"wmf: {summary.message or 'the run failed'}", file=sys.stderr)
    return 0 if ok else 1


def _dask_options(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.task_runner != "dask":
        return None
    return {"address": args.dask_address, "workers": args.dask_workers}


def _dask_runner(address: str | None = None, workers: int = 2) -> Any:
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise WmfError("--task-runner dask needs prefect-dask: pip install 'wmf[dask]'") from None
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "dashboard_address": None}
    )
