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

from flows.cli import failures, output
from flows.cli.failures import Exit
from flows.cli.parser import build_parser, config_from, options, run_config_from
from flows.cli.session import Session, say, session
from flows.server import SERVER
from wmf.config import PipelineConfig, RunConfig
from wmf.errors import WmfError
from wmf.layout import LATEST, Export
from wmf.pipeline.registry import PIPELINE, PIPELINE_NAMES, SEARCHES, STAGES, upstream
from wmf.pipeline.summary import RunSummary

Command = Callable[[argparse.Namespace, list[str]], int]


def run_flow(flow: Any, dask: dict[str, Any] | None, **parameters: Any) -> tuple[bool, RunSummary]:
    """Run a flow to its end: (success, its summary; a failed run's has the stages so far)."""
    import fastapi.encoders  # noqa: F401  Prefect encodes a flow's parameters with it: import it while the server boots

    from flows.pipeline import PipelineFailed

    SERVER.ready()
    if dask is not None:
        flow = flow.with_options(task_runner=_dask_runner(**dask))
    state = flow(**parameters, return_state=True)
    if state.is_failed():
        exc = state.result(raise_on_failure=False)
        if isinstance(exc, PipelineFailed):
            ok, summary = False, exc.summary
        else:
            raw, error_type = parameters.get("raw"), type(exc).__name__
            ok, summary = False, RunSummary(parameters["data"], raw, error=str(exc), error_type=error_type)
    else:
        ok, summary = True, state.result()
    if SERVER.process is None:  # a configured server, which may have a UI (the temporary one has none)
        from prefect.utilities.urls import url_for

        summary.link = url_for("flow-run", obj_id=state.state_details.flow_run_id)
    return ok, summary


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


def generate(args: argparse.Namespace, _argv: list[str]) -> int:
    from wmf.data.generate import generate

    print(json.dumps(generate(args.out, scale=args.scale, seed=args.seed), indent=2, default=str))
    return 0


def demo(args: argparse.Namespace, argv: list[str]) -> int:
    from wmf.data.generate import generate
    from wmf.layout import Raw

    raw, data = args.out / "raw", args.out / "data"
    if not (raw / Raw.TITLES[0]).exists():
        say(f"generating a demo dataset (scale {args.scale}) in {raw}")
        generate(raw, scale=args.scale, seed=0)
    with _session(args, data, raw, list(PIPELINE_NAMES), PipelineConfig()) as s:
        ok, summary = run_pipeline(data, raw, PipelineConfig(), RunConfig())
    code = _finish(ok, summary, args, argv, s)
    if ok and not args.json:
        output.show_demo_results(data / Export.DIRECTORY / LATEST)
    return code


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """`wmf run`, and `wmf <stage>` (that stage alone, from the published outputs before it)."""
    only = [args.only] if args.command == "run" and args.only else None
    force = only
    if args.command == "run" and args.from_stage:
        force = list(PIPELINE_NAMES[PIPELINE_NAMES.index(args.from_stage) :])
    if args.command != "run":
        only = [args.command]
    config, orchestration, raw = config_from(args), run_config_from(args), getattr(args, "raw", None)
    with _session(args, args.data, raw, only or list(PIPELINE_NAMES), config) as s:
        ok, summary = run_pipeline(
            args.data, raw, config, orchestration, only, force, args.wait, _dask_options(args)
        )
    return _finish(ok, summary, args, argv, s)


def search(args: argparse.Namespace, argv: list[str]) -> int:
    """A search (tune, compare): its flow is `flows/<name>.py`'s function of that name."""
    stage = STAGES[args.command]
    names = [s.name for s in upstream(stage)] if stage.runs_upstream else []
    config, orchestration, raw = config_from(args), run_config_from(args), getattr(args, "raw", None)
    dask = _dask_options(args)
    with _session(args, args.data, raw, [*names, stage.name], config) as s:
        flow = getattr(importlib.import_module(f"flows.{args.command}"), args.command)
        ok, summary = run_flow(
            flow,
            dask,
            data=str(s.data),
            raw=None if raw is None else str(raw.resolve()),
            config=config.to_dict(),
            run=dataclasses.asdict(orchestration),
            force=args.force,
            wait=args.wait,
            parallel=0 if dask is None else dask["workers"] or 2,
        )
    return _finish(ok, summary, args, argv, s)


def replay(args: argparse.Namespace, argv: list[str]) -> int:
    from flows.replay import nights, replay

    last: list[RunSummary] = []

    def runner(data: Path, raw: Path, night: PipelineConfig, orchestration: RunConfig) -> Any:
        ok, summary = run_pipeline(data, raw, night, orchestration, wait=args.wait, dask=_dask_options(args))
        last[:] = [summary]
        return ok, summary

    echo = (lambda text: print(text, file=sys.stderr)) if args.json else print
    days = nights(args.start, args.nights, args.every)
    config, orchestration = config_from(args), run_config_from(args)
    with _session(args, args.data, args.raw, list(PIPELINE_NAMES), config) as s:
        ok, rows = replay(args.data, args.raw, config, orchestration, days, runner, echo)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    if not ok:
        failures.tell(failures.line(last[0].message, last[0].failed_type, argv, s.log))
        return failures.exit_code(last[0].failed_type)
    return Exit.OK


def serve(args: argparse.Namespace, argv: list[str]) -> int:
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


def status(args: argparse.Namespace, _argv: list[str]) -> int:
    from wmf.pipeline.status import status

    report = status(args.data, args.raw, config_from(args), verify=args.verify)
    output.print_status(report, args.json)
    return Exit.FAILED if report.failing else Exit.OK


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
# Commands that run Prefect: those that run flows, in a session (flows.cli.session), and serve.
PREFECT_COMMANDS = frozenset({"run", "replay", "demo", "serve", *STAGES})


def _session(
    args: argparse.Namespace, data: Path, raw: Path | None, names: list[str], config: PipelineConfig
) -> Any:
    return session(args.command, data, raw, names, config, getattr(args, "wait", False), args.verbose)


def _finish(ok: bool, summary: RunSummary, args: argparse.Namespace, argv: list[str], s: Session) -> int:
    """Print the summary (stdout) and a failure's one line (stderr); the exit code."""
    output.print_summary(summary, args.json, s.log)
    if ok:
        return Exit.OK
    failures.tell(failures.line(summary.message, summary.failed_type, argv, s.log))
    return failures.exit_code(summary.failed_type)


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
