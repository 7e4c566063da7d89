"""The `wmf` command line. Stage options are generated from the config dataclasses,
so `--help` always shows every parameter with its default.

Prefect is imported only by the commands that run flows, so `wmf generate` and
`wmf --help` stay fast and the core stays usable without a server.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.server import SERVER
from wmf import configfile
from wmf.config import SEARCH_CONFIGS, STAGE_CONFIGS, STAGES, PipelineConfig, RunConfig
from wmf.errors import WmfError

DEMO_SCALE = 0.005
SECTION_NAMES = " ".join(f"[{name}]" for name in configfile.SECTIONS)
OVERRIDES = "a flag overrides the file, the file the defaults (`--config FILE --help` shows the result)"

# The default of a config field's option, given its section: the field's, a config file's,
# or argparse.SUPPRESS (only typed options land in the namespace).
Default = Callable[[str, dataclasses.Field[Any]], Any]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _dest(cls: type, f: dataclasses.Field[Any]) -> str:
    return f"{cls.__name__}.{f.name}"


def _add_dataclass_options(parser: argparse.ArgumentParser, cls: type, title: str, default: Default) -> None:
    """One option per field; a name another stage already uses gets the stage as prefix
    (`--device` trains, `--export-device` scores)."""
    group = parser.add_argument_group(title)
    taken = {flag for action in parser._actions for flag in action.option_strings}
    section = next(name for name, c in configfile.SECTIONS.items() if c is cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        kwargs: dict[str, Any] = {"dest": _dest(cls, f), "help": meta.get("help")}
        if isinstance(f.default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = type(f.default)
            kwargs["choices"] = meta.get("choices")
            kwargs["metavar"] = None if meta.get("choices") else f.name.split("_")[-1].upper()
        flag = _flag(f.name)
        group.add_argument(
            flag if flag not in taken else _flag(f"{section}_{f.name}"), default=default(section, f), **kwargs
        )


def _add_stage_options(parser: argparse.ArgumentParser, default: Default) -> None:
    """Every pipeline stage's options, one group per stage."""
    for name, cls in STAGE_CONFIGS.items():
        _add_dataclass_options(parser, cls, f"{name} options", default)


def _options(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of one config dataclass that are in the namespace."""
    values = vars(args)
    return {f.name: values[_dest(cls, f)] for f in dataclasses.fields(cls) if _dest(cls, f) in values}


def _config_from(args: argparse.Namespace) -> PipelineConfig:
    sections = {**STAGE_CONFIGS, **SEARCH_CONFIGS}
    return PipelineConfig.from_dict({stage: _options(args, cls) for stage, cls in sections.items()})


def _run_config_from(args: argparse.Namespace) -> RunConfig:
    return RunConfig(**_options(args, RunConfig))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse twice: first for `--config`, then with the file's options as the defaults, so a
    flag overrides the file, the file overrides the fields' defaults, and --help shows the result."""
    first = argparse.ArgumentParser(prog="wmf", add_help=False)
    first.add_argument("--config", type=Path)
    path = first.parse_known_args(argv)[0].config
    return build_parser(configfile.load(path) if path else None).parse_args(argv)


def build_parser(
    defaults: configfile.Config | None = None, typed_only: bool = False
) -> argparse.ArgumentParser:
    """The `wmf` parser. `defaults` (by section, as from `configfile.load`) replace the fields'
    defaults; `typed_only` leaves every untyped config option out of the namespace."""

    def default(section: str, f: dataclasses.Field[Any]) -> Any:
        if typed_only:
            return argparse.SUPPRESS
        return (defaults or {}).get(section, {}).get(f.name, f.default)

    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="wmf",
        description="Netflix Prize ratings -> implicit-feedback recommendations "
        "(exact weighted matrix factorization, orchestrated with Prefect 3).",
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write synthetic data in the Kaggle layout", formatter_class=fmt)
    gen.add_argument("--out", type=Path, required=True, help="folder to write RAW files into")
    gen.add_argument("--scale", type=float, default=1.0, help="1 = the full set's 100,480,507 ratings")
    gen.add_argument("--seed", type=int, default=0)

    for stage in STAGES:
        p = sub.add_parser(stage, help=f"run the {stage} stage alone", formatter_class=fmt)
        if stage == "ingest":
            p.add_argument("--raw", type=Path, required=True, help="folder of raw Netflix files")
        _common(p, default)
        _add_dataclass_options(p, STAGE_CONFIGS[stage], f"{stage} options", default)

    run = sub.add_parser("run", help="run every stage, reusing unchanged ones", formatter_class=fmt)
    run.add_argument("--raw", type=Path, required=True, help="folder of raw Netflix files")
    _common(run, default)
    order = run.add_mutually_exclusive_group()
    order.add_argument(
        "--from", dest="from_stage", choices=STAGES, help="rerun this stage and the ones after it"
    )
    order.add_argument("--only", choices=STAGES, help="rerun this stage alone")
    _add_stage_options(run, default)

    replay = sub.add_parser(
        "replay",
        help="rebuild nights of the timeline, one pipeline run per night",
        description="Run the pipeline once per simulated night: night i keeps the ratings dated up to "
        "START + i * EVERY days (--until), warm-starting from the night before, and prints one line "
        "per night (seconds per stage, warm or cold, metrics, drift).",
        formatter_class=fmt,
    )
    replay.add_argument("--raw", type=Path, required=True, help="folder of raw Netflix files")
    replay.add_argument("--start", type=_date, required=True, help="the first night, YYYY-MM-DD")
    replay.add_argument("--nights", type=int, default=7, help="nights to run")
    replay.add_argument("--every", type=int, default=1, help="days between nights")
    _common(replay, default)
    _add_stage_options(replay, default)

    serve = sub.add_parser(
        "serve",
        help="run the pipeline on a cron schedule (no work pool needed)",
        description="Register the deployment wmf-pipeline/NAME and run it on schedule until stopped. "
        "Its config parameter holds only the options typed here; the others come from --config's file "
        "and the defaults of the code at each run.",
        formatter_class=fmt,
    )
    serve.add_argument("--raw", type=Path, required=True, help="folder of raw Netflix files")
    serve.add_argument("--data", type=Path, required=True, help="folder of stage outputs")
    serve.add_argument("--cron", default="0 3 * * *", help="schedule, in UTC")
    serve.add_argument("--name", default="nightly", help="deployment name")
    _config_option(
        serve,
        "the deployment stores its path, not its values, and every run reads it again, so a rewritten "
        "file (e.g. DATA/tune/latest/best.toml) applies from the next run; the flags typed here override it",
    )
    _add_stage_options(serve, default)

    tune = sub.add_parser(
        "tune",
        help="search the train options (Optuna) on a validation split of the training data",
        description="Run the ingest and index stages (Cached when unchanged), then search the train "
        "options on a validation share of the index's training interactions (never its evaluation "
        "holdout), and publish DATA/tune/latest/ (best.toml, trials.parquet, tune.png). "
        "`wmf run --config DATA/tune/latest/best.toml` then trains with the best options.",
        formatter_class=fmt,
    )
    tune.add_argument("--raw", type=Path, required=True, help="folder of raw Netflix files")
    tune.add_argument("--force", action="store_true", help="search again even when this search is published")
    _common(tune, default)
    for name in ("ingest", "index"):
        _add_dataclass_options(tune, STAGE_CONFIGS[name], f"{name} options", default)
    _add_dataclass_options(tune, STAGE_CONFIGS["train"], "train options (those not searched)", default)
    _add_dataclass_options(tune, SEARCH_CONFIGS["tune"], "search options", default)

    compare = sub.add_parser(
        "compare",
        help="the notebook's optimizer study on the published index",
        description="Train each optimizer from the same initial factors on the published index, on the "
        "same exact objective, and publish DATA/compare/latest/ (comparison.parquet, compare.png).",
        formatter_class=fmt,
    )
    compare.add_argument("--force", action="store_true", help="run again even when this study is published")
    _common(compare, default)
    # the study's options first: --iterations and --learning-rate are the study's here
    _add_dataclass_options(compare, SEARCH_CONFIGS["compare"], "study options", default)
    train_options = "train options (the objective, factors, seed)"
    _add_dataclass_options(compare, STAGE_CONFIGS["train"], train_options, default)

    demo = sub.add_parser(
        "demo", help="generate a small dataset and run the pipeline on it", formatter_class=fmt
    )
    demo.add_argument("--out", type=Path, default=Path("wmf-demo"), help="folder for raw data and outputs")
    demo.add_argument("--scale", type=float, default=DEMO_SCALE)
    demo.add_argument("--json", action="store_true", help="print a JSON summary on stdout")

    status = sub.add_parser("status", help="show each stage's published output", formatter_class=fmt)
    status.add_argument("--data", type=Path, required=True)
    status.add_argument("--raw", type=Path, help="tell whether outputs are current for this RAW")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    _config_option(status, OVERRIDES)
    _add_stage_options(status, default)
    return parser


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date as YYYY-MM-DD: {text!r}") from None


def _config_option(p: argparse.ArgumentParser, how: str) -> None:
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"TOML file of options by section ({SECTION_NAMES}); {how}",
    )


def _common(p: argparse.ArgumentParser, default: Default) -> None:
    p.add_argument("--data", type=Path, required=True, help="folder of stage outputs")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--wait", action="store_true", help="wait for another run on DATA instead of exiting")
    p.add_argument(
        "--task-runner",
        choices=("threads", "dask"),
        default="threads",
        help="dask: run stages on a Dask cluster (prefect-dask), ingest parsing raw files in parallel",
    )
    p.add_argument("--dask-address", help="scheduler of an existing Dask cluster (tcp://host:8786)")
    p.add_argument("--dask-workers", type=int, default=2, help="workers of the local Dask cluster")
    _config_option(p, OVERRIDES)
    _add_dataclass_options(p, RunConfig, "orchestration", default)


def _quiet_prefect() -> None:
    """Defaults for an offline machine and a temporary local server (overridable)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def run_pipeline(
    data: Path,
    raw: Path | None,
    config: PipelineConfig,
    run: RunConfig,
    only: list[str] | None = None,
    force: list[str] | None = None,
    wait: bool = False,
    dask: dict[str, Any] | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Run the flow; returns (success, summary). `dask`: {"address"} or {"workers"}."""
    from flows.pipeline import pipeline

    SERVER.ready()
    if dask is not None:
        pipeline = pipeline.with_options(task_runner=_dask_runner(**dask))
    state = pipeline(
        data=str(data.resolve()),
        raw=None if raw is None else str(raw.resolve()),
        config=config.to_dict(),
        run=dataclasses.asdict(run),
        only=only,
        force=force,
        wait=wait,
        parallel=dask is not None,
        return_state=True,
    )
    return _outcome(state)


def run_tune(
    data: Path, raw: Path, config: PipelineConfig, run: RunConfig, force: bool, wait: bool, dask: dict | None
) -> tuple[bool, dict[str, Any]]:
    """Run the search flow; returns (success, summary). With Dask, one trial per worker at a time."""
    from flows.tune import tune

    SERVER.ready()
    parallel = 0
    if dask is not None:
        tune = tune.with_options(task_runner=_dask_runner(**dask))
        parallel = dask.get("workers") or 2
    state = tune(
        data=str(data.resolve()),
        raw=str(raw.resolve()),
        config=config.to_dict(),
        run=dataclasses.asdict(run),
        force=force,
        wait=wait,
        parallel=parallel,
        return_state=True,
    )
    return _outcome(state)


def run_compare(
    data: Path, config: PipelineConfig, run: RunConfig, force: bool, wait: bool
) -> tuple[bool, dict[str, Any]]:
    from flows.compare import compare

    SERVER.ready()
    state = compare(
        data=str(data.resolve()),
        config=config.to_dict(),
        run=dataclasses.asdict(run),
        force=force,
        wait=wait,
        return_state=True,
    )
    return _outcome(state)


def _outcome(state: Any) -> tuple[bool, dict[str, Any]]:
    """(success, summary) of a flow run's final state; a failed run's summary of the stages so far."""
    from flows.pipeline import PipelineFailed

    if state.is_failed():
        exc = state.result(raise_on_failure=False)
        return False, exc.summary if isinstance(exc, PipelineFailed) else {"error": str(exc)}
    return True, state.result()


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


def _dask_options(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.task_runner != "dask":
        return None
    return {"address": args.dask_address, "workers": args.dask_workers}


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    for stage, info in summary.get("stages", {}).items():
        line = f"{stage:<7} {info['state']:<9} {info['seconds']:>8.1f} s"
        print(line + (f"  {info['error']}" if "error" in info else f"  {info.get('directory', '')}"))
        for name, table in info.get("outputs", {}).items():
            print(f"          {name:<22} {table['rows']:>12,} rows  {table['path']}")
        if "best" in info:
            print(f"          best validation {info['metric']} {info['best_value']:.4f}: {info['best']}")
            print(f"          train with them: wmf run --config {info['best_toml']}")


def _replay(args: argparse.Namespace, config: PipelineConfig, run: RunConfig) -> int:
    from flows.replay import nights, replay

    def runner(data: Path, raw: Path, night: PipelineConfig, orchestration: RunConfig) -> Any:
        return run_pipeline(data, raw, night, orchestration, wait=args.wait, dask=_dask_options(args))

    echo = (lambda text: print(text, file=sys.stderr)) if args.json else print
    days = nights(args.start, args.nights, args.every)
    ok, rows = replay(args.data, args.raw, config, run, days, runner, echo)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    return 0 if ok else 1


def _demo(args: argparse.Namespace) -> int:
    from wmf.generate import generate

    raw, data = args.out / "raw", args.out / "data"
    if not (raw / "movie_titles.csv").exists():
        print(f"generating a demo dataset (scale {args.scale}) in {raw}", file=sys.stderr)
        generate(raw, scale=args.scale, seed=0)
    ok, summary = run_pipeline(data, raw, PipelineConfig(), RunConfig())
    _print_summary(summary, args.json)
    if ok and not args.json:
        _show_demo_results(data / "exports" / "latest")
    return 0 if ok else 1


def _show_demo_results(exports: Path) -> None:
    """A glimpse of what analysts get: headline metrics and one user's top five."""
    import polars as pl

    metrics = json.loads((exports / "metrics.json").read_text())
    print(f"\nPublished tables: {exports}")
    refit = " (of the model before its refit on all data)" if metrics["refit"] else ""
    print(f"  held-out evaluation on {metrics['n_users_evaluated']:,} users{refit}")
    for metric in ("recall@20", "ndcg@100"):
        model, popular = metrics["model"][metric], metrics["popularity"][metric]
        se = metrics["stderr"][metric]
        print(
            f"  {metric:<10} model {model:.3f} (standard error {se:.3f})   popularity baseline {popular:.3f}"
        )
    recs = pl.read_parquet(exports / "recommendations.parquet", n_rows=5)
    print(f"  top 5 for customer {recs['user_id'][0]}:")
    for row in recs.iter_rows(named=True):
        print(f"    {row['rank']}. {row['title']} ({row['year']})  score {row['score']:.3f}")


# Commands that run flows and end: they boot Prefect's temporary server at once (flows.server).
FLOW_COMMANDS = frozenset({"run", *STAGES, "tune", "compare", "replay", "demo"})


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        if args.command in FLOW_COMMANDS:
            _quiet_prefect()
            SERVER.start()
        return _dispatch(args, argv)
    except WmfError as exc:
        print(f"wmf: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, argv: list[str] | None) -> int:
    if args.command == "generate":
        from wmf.generate import generate

        counts = generate(args.out, scale=args.scale, seed=args.seed)
        print(json.dumps(counts, indent=2, default=str))
        return 0
    if args.command == "demo":
        return _demo(args)
    if args.command == "serve":
        _quiet_prefect()
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
                "config": {s: o for s, cls in STAGE_CONFIGS.items() if (o := _options(typed, cls))},
                "config_file": None if args.config is None else str(args.config.resolve()),
                "wait": True,
            },
        )
        return 0
    if args.command == "status":
        from flows.status import print_status, status

        print_status(status(args.data, args.raw, _config_from(args)), args.json)
        return 0
    config, run = _config_from(args), _run_config_from(args)
    if args.command == "tune":
        ok, summary = run_tune(args.data, args.raw, config, run, args.force, args.wait, _dask_options(args))
    elif args.command == "compare":
        ok, summary = run_compare(args.data, config, run, args.force, args.wait)
    elif args.command == "replay":
        return _replay(args, config, run)
    elif args.command == "run":
        start = args.from_stage or args.only
        only = [args.only] if args.only else None
        force = list(STAGES[STAGES.index(start) :]) if args.from_stage else only
        ok, summary = run_pipeline(
            args.data, args.raw, config, run, only, force, args.wait, _dask_options(args)
        )
    else:
        raw = getattr(args, "raw", None)
        ok, summary = run_pipeline(
            args.data, raw, config, run, [args.command], None, args.wait, _dask_options(args)
        )
    _print_summary(summary, args.json)
    if not ok:
        failed = [s for s, i in summary.get("stages", {}).items() if i["state"] == "Failed"]
        detail = summary["stages"][failed[0]]["error"] if failed else summary.get("error")
        print(f"wmf: {failed[0] if failed else 'pipeline'} failed: {detail}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
