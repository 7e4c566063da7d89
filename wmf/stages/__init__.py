"""One package per stage; here, what a stage declares and what its build receives.

A stage is declared once, in its package's `__init__` (`STAGE = Stage(...)`): its name,
its folder under DATA, the files of other stages' outputs it reads, its config, and the
module that builds it. `wmf.pipeline` plans, keys, builds, verifies and publishes every
stage the same way from these declarations, and the CLI, the flows and the status iterate
them: nothing outside a stage's package knows what the stage does. Declarations import
nothing heavy (planning a night must not import torch or polars); the build module is
imported only to build.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Runs a function over a list of independent jobs: built-in `map`, a Dask client's, or one
# Prefect task per job (a search's trials).
Mapper = Callable[[Callable[[Any], Any], list[Any]], Iterable[Any]]


@dataclass(frozen=True)
class Read:
    """Files of another stage's published output that a build reads; their fingerprints are in
    its key. A listed file the output lacks (an optional table) is not read.

    `agrees_with`: another read whose output read these files too; they must be the same ones
    (an export reads the published index's users and movies, which must be those its model was
    trained on).
    """

    stage: str
    files: tuple[str, ...]
    agrees_with: str | None = None


@dataclass(frozen=True)
class Follow:
    """The stage's own earlier output that a build continues from: a warm start, or the
    export tonight's drift compares with.

    It is the published output, unless that one was built on the very inputs of tonight
    (a rerun, or other options on the same night): then the one it followed in turn, so
    that an unchanged rerun keeps its key. `wanted(config)` says whether to look at all,
    `usable(config, directory, manifest)` whether that output can serve.
    """

    role: str
    files: tuple[str, ...]
    wanted: Callable[[Any], bool] = lambda _config: True
    usable: Callable[[Any, Path, dict[str, Any]], bool] = lambda _config, _directory, _manifest: True


@dataclass(frozen=True)
class Stage:
    """What the pipeline needs to know of a stage; see the module docstring."""

    name: str
    directory: str
    config: type
    build: str  # the module whose `build(ctx: BuildContext) -> dict` builds an output
    help: str  # one line for `wmf --help`
    # A module of what a run shows of the output, each optional: `artifacts(manifest, state)`
    # (a list of Artifact), `details(manifest, published)` (fields of the run summary's
    # entry), `lines(details)` (printed under the stage's line), `figures(manifest)`
    # ({title: PNG path}, shown in the run summary), `HISTORY` ({column: polars type}) and
    # `history(manifest)` (the values of those columns in DATA/history/runs.parquet).
    report: str | None = None
    reads: tuple[Read, ...] = ()
    raw: Callable[[Path], list[Path]] | None = None  # the raw files it reads (fingerprinted)
    # What its options name outside DATA, from the whole config (the export's rule files and
    # the day they apply): a JSON-able value hashed into its key, handed to its build as
    # `inputs["external"]`.
    external: Callable[[Any], dict[str, Any]] | None = None
    rehash: Callable[[Any], bool] = lambda _config: False  # hash the raw files even if unchanged
    follows: Follow | None = None
    sections: tuple[str, ...] = ()  # other config sections among its parameters
    unkeyed: tuple[str, ...] = ()  # parameters that change nothing in its output
    resume: str | None = None  # hidden folder of per-key work kept across kills
    keep_resume: bool = False  # keep that work once built (a search's study), but on `--force`
    check: Callable[[dict[str, Any], dict[str, Any] | None, Any], None] | None = None  # before publishing
    keep: Callable[[Any], int | None] = lambda _config: None  # outputs kept (None: the run's option)
    units: str | None = None  # its independent jobs, worth a Prefect task each ("trial")
    options: tuple[str, ...] = ()  # config sections its command takes, in order (default: its own)
    runs_upstream: bool = False  # its command runs the pipeline stages it reads first
    description: str = ""  # for its command's --help
    # What its command's --help says of another section's options: (section, what they are to
    # it, which of them it sets itself), e.g. a search's train options
    about_sections: tuple[tuple[str, str, str], ...] = ()

    @property
    def option_sections(self) -> tuple[str, ...]:
        return self.options or (self.name,)


@dataclass(frozen=True)
class BuildContext:
    """Everything a build gets: it writes its files into `out` and returns its summary, whose
    "tables" map a name to {"path" (relative to `out`), "rows"}."""

    out: Path
    config: Any  # the stage's typed config
    sections: dict[str, Any]  # the other config sections it declares, typed
    sources: dict[str, Path]  # each read's (and the follow's) verified output directory
    inputs: dict[str, Any]  # what its key hashes (the raw files' fingerprints, for an ingest)
    provenance: dict[str, str]  # key, code hash and package version of this output
    raw: Path | None = None
    published: Path | None = None  # the stage's own published output, before this one
    resume: Path | None = None  # per-key folder kept across kills (checkpoints, a study)
    progress: bool = True  # tqdm bars
    report: Callable[[float, str | None], None] = lambda _done, _line: None  # share done, a log line
    mapper: Mapper = map
    parallel: int = 1  # jobs at once through `mapper`
    distributed: bool = False  # `mapper` runs them on a cluster (Dask)
    verify: Callable[[Path, tuple[str, ...]], None] = lambda _directory, _files: None  # another output


@dataclass(frozen=True)
class Artifact:
    """Something a run shows its readers beside the tables: a markdown text or a table.

    Stages describe them as plain data; the flows publish them as Prefect artifacts."""

    key: str
    description: str
    markdown: str | None = None
    table: list[dict[str, Any]] = field(default_factory=list)


def embedded_png(path: Path, title: str) -> str:
    """Markdown showing the PNG inline, then where the file is: the Prefect UI cannot open a file
    on the machine that ran the flow."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"![{title}](data:image/png;base64,{data})\n\n`{path}`"
