"""The `wmf` argument parser, generated from the registry and the config dataclasses.

Every stage's command and every option come from the stage declarations and the config
fields, so `--help` always shows every parameter with its default (or a config file's
value), and a new stage or option needs no change here. An option's flag is its field's
name (`until`, `--until`) in every command, as its key is in a config file: the names are
unique across the sections (`configfile.OWNERS`). Every value is checked before anything runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wmf import configfile
from wmf.config import PipelineConfig, RunConfig, sections
from wmf.pipeline.registry import PIPELINE, PIPELINE_NAMES, SEARCHES, upstream
from wmf.stages import Stage
from wmf.values import flag

DEMO_SCALE = 0.005
SECTION_NAMES = " ".join(f"[{name}]" for name in configfile.SECTIONS)
OVERRIDES = "a flag overrides the file, the file the defaults (`--config FILE --help` shows the result)"
VERBOSE = "also print Prefect's log and tracebacks on the console (they always go to DATA/logs/)"
FORMAT = argparse.ArgumentDefaultsHelpFormatter

# The default of a config field's option, given its section: the field's, a config file's,
# or argparse.SUPPRESS (only typed options land in the namespace).
Default = Callable[[str, dataclasses.Field[Any]], Any]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse twice: first for `--config`, then with the file's options as the defaults, so a
    flag overrides the file, the file overrides the fields' defaults, and --help shows the result.
    Every option's value is checked (a `ConfigError` names the first that cannot be meant)."""
    first = argparse.ArgumentParser(prog="wmf", add_help=False)
    first.add_argument("--config", type=Path)
    path = first.parse_known_args(argv)[0].config
    args = build_parser(configfile.load(path) if path else None).parse_args(argv)
    config_from(args)
    run_config_from(args)
    return args


def build_parser(
    defaults: configfile.Config | None = None, typed_only: bool = False
) -> argparse.ArgumentParser:
    """The `wmf` parser. `defaults` (by section, as from `configfile.load`) replace the fields'
    defaults; `typed_only` leaves every untyped config option out of the namespace."""

    def default(section: str, f: dataclasses.Field[Any]) -> Any:
        if typed_only:
            return argparse.SUPPRESS
        return (defaults or {}).get(section, {}).get(f.name, f.default)

    parser = argparse.ArgumentParser(
        prog="wmf",
        description="Netflix Prize ratings -> implicit-feedback recommendations "
        "(exact weighted matrix factorization, orchestrated with Prefect 3).",
        formatter_class=FORMAT,
    )
    parser.add_argument("--version", action="version", version=f"wmf {importlib.metadata.version('wmf')}")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write synthetic data in the Kaggle layout", formatter_class=FORMAT)
    gen.add_argument("--out", type=Path, required=True, help="folder to write RAW files into")
    gen.add_argument("--scale", type=float, default=1.0, help="1 = the full set's 100,480,507 ratings")
    gen.add_argument("--seed", type=int, default=0)

    for stage in PIPELINE:
        _stage_command(sub, stage, default, [stage])
    run = sub.add_parser("run", help="run every stage, reusing unchanged ones", formatter_class=FORMAT)
    _raw(run)
    _common(run, default)
    order = run.add_mutually_exclusive_group()
    order.add_argument(
        "--from", dest="from_stage", choices=PIPELINE_NAMES, help="rerun this stage and the ones after it"
    )
    order.add_argument("--only", choices=PIPELINE_NAMES, help="rerun this stage alone")
    _add_stage_options(run, default)

    replay = sub.add_parser(
        "replay",
        help="rebuild nights of the timeline, one pipeline run per night",
        description="Run the pipeline once per simulated night: night i keeps the ratings dated up to "
        "START + i * EVERY days (--until), warm-starting from the night before, and prints one line "
        "per night (seconds per stage, warm or cold, metrics, drift).",
        formatter_class=FORMAT,
    )
    _raw(replay)
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
        formatter_class=FORMAT,
    )
    _raw(serve)
    serve.add_argument("--data", type=Path, required=True, help="folder of stage outputs")
    serve.add_argument("--cron", default="0 3 * * *", help="schedule, in UTC")
    serve.add_argument("--name", default="nightly", help="deployment name")
    _config_option(
        serve,
        "the deployment stores its path, not its values, and every run reads it again, so a rewritten "
        "file (e.g. DATA/tune/latest/best.toml) applies from the next run; the flags typed here override it",
    )
    _add_stage_options(serve, default)

    for stage in SEARCHES:
        _stage_command(sub, stage, default, [*upstream(stage), stage] if stage.runs_upstream else [stage])

    demo = sub.add_parser(
        "demo", help="generate a small dataset and run the pipeline on it", formatter_class=FORMAT
    )
    demo.add_argument("--out", type=Path, default=Path("wmf-demo"), help="folder for raw data and outputs")
    demo.add_argument("--scale", type=float, default=DEMO_SCALE)
    demo.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    demo.add_argument("--verbose", action="store_true", help=VERBOSE)

    status = sub.add_parser(
        "status",
        help="how the last run ended, and each stage's published output",
        description="Print how the last run ended (Completed, Failed, Interrupted, Crashed: killed "
        "without a record, or Running) and each stage's published output. Exit code 1 when the last "
        "run did not complete or (--verify) a published file is damaged, 2 when DATA does not exist: "
        "a monitoring check can call it.",
        formatter_class=FORMAT,
    )
    status.add_argument("--data", type=Path, required=True)
    status.add_argument("--raw", type=Path, help="tell whether outputs are current for this RAW")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.add_argument(
        "--verify", action="store_true", help="read every published file and check it against its manifest"
    )
    _config_option(status, OVERRIDES)
    _add_stage_options(status, default)
    return parser


def _stage_command(sub: Any, stage: Stage, default: Default, runs: list[Stage]) -> None:
    """`wmf <stage>`: the stage (and, for a search, the stages it runs first) and its options."""
    p = sub.add_parser(
        stage.name,
        help=stage.help if stage in SEARCHES else f"run the {stage.name} stage alone: {stage.help}",
        description=stage.description or None,
        formatter_class=FORMAT,
    )
    if any(s.raw is not None for s in runs):
        _raw(p)
    if stage in SEARCHES:
        p.add_argument("--force", action="store_true", help="run again even when this output is published")
    _common(p, default)
    about = {section: (role, note) for section, role, note in stage.about_sections}
    for name in stage.option_sections:
        role, note = about.get(name, (None, None))
        title = f"{name} options" + (f" ({role})" if role else "")
        _add_dataclass_options(p, sections()[name], title, default, note)


def _add_dataclass_options(
    parser: argparse.ArgumentParser, cls: type, title: str, default: Default, description: str | None = None
) -> None:
    """One option per field, its flag the field's name (argparse refuses a flag given twice)."""
    group = parser.add_argument_group(title, description)
    section = next(name for name, c in configfile.SECTIONS.items() if c is cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        kwargs: dict[str, Any] = {"dest": _dest(cls, f), "help": meta.get("help")}
        if isinstance(f.default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _absolute if meta.get("path") else type(f.default)
            kwargs["choices"] = meta.get("choices")
            kwargs["metavar"] = None if meta.get("choices") else f.name.split("_")[-1].upper()
        group.add_argument(flag(f.name), default=default(section, f), **kwargs)


def _add_stage_options(parser: argparse.ArgumentParser, default: Default) -> None:
    """Every pipeline stage's options, one group per stage."""
    for stage in PIPELINE:
        _add_dataclass_options(parser, stage.config, f"{stage.name} options", default)


def config_from(args: argparse.Namespace) -> PipelineConfig:
    return PipelineConfig.from_dict({name: options(args, cls) for name, cls in sections().items()})


def run_config_from(args: argparse.Namespace) -> RunConfig:
    return RunConfig(**options(args, RunConfig))


def options(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of one config dataclass that are in the namespace."""
    values = vars(args)
    return {f.name: values[_dest(cls, f)] for f in dataclasses.fields(cls) if _dest(cls, f) in values}


def _dest(cls: type, f: dataclasses.Field[Any]) -> str:
    return f"{cls.__name__}.{f.name}"


def _absolute(text: str) -> str:
    """A path option as an absolute path (empty: none), so that a flow run elsewhere finds it."""
    return str(Path(text).absolute()) if text else ""


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date as YYYY-MM-DD: {text!r}") from None


def _raw(p: argparse.ArgumentParser) -> None:
    p.add_argument("--raw", type=Path, required=True, help="folder of raw Netflix files")


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
    p.add_argument("--verbose", action="store_true", help=VERBOSE)
    _config_option(p, OVERRIDES)
    _add_dataclass_options(p, RunConfig, "orchestration", default)
