"""Ingest: the raw Netflix Prize files to typed Parquet tables and quality.json.

movie_titles goes through `titles`, the ratings and probe files through `lines` (a strict
byte scanner for the clean case, a checked polars scan that names every bad line
otherwise); a night whose raw folder only gained files takes the rows of the others from
the published ingest (`reuse`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
from tqdm import tqdm

from wmf.config import IngestConfig
from wmf.layout import Ingest
from wmf.stages.ingest import quality
from wmf.stages.ingest.inputs import find_inputs
from wmf.stages.ingest.lines import read_lines_table
from wmf.stages.ingest.rejects import Rejects, file_name
from wmf.stages.ingest.reuse import Reuse
from wmf.stages.ingest.reuse import ratings as reuse_rows
from wmf.stages.ingest.schema import REJECTS_SCHEMA
from wmf.stages.ingest.titles import read_titles
from wmf.store import write_json

TABLES = {
    "movies": Ingest.MOVIES,
    "probe": Ingest.PROBE,
    "ratings": Ingest.RATINGS,
    "rejects": Ingest.REJECTS,
}


def ingest(
    raw: Path, out: Path, config: IngestConfig, progress: bool = True, reuse: Reuse | None = None
) -> dict:
    """Parse RAW into OUT/{ratings,movies,probe,rejects}.parquet and quality.json; return counts
    for the manifest. `reuse`: the published ingest, whose rows of unchanged ratings files are
    taken instead of parsed again (`wmf.stages.ingest.reuse`)."""
    summary, ratings = parse(raw, out, config, progress, reuse)
    return with_quality(Path(out), summary, ratings)


def parse(
    raw: Path, out: Path, config: IngestConfig, progress: bool, reuse: Reuse | None = None
) -> tuple[dict, list[quality.Columns] | None]:
    """The tables and the manifest's counts; also the ratings when the parse kept them in memory."""
    raw, out = Path(raw), Path(out)
    inputs = find_inputs(raw)
    rejects = Rejects(raw, config.on_bad_lines)
    tables: dict[str, dict[str, Any]] = {}
    files: list[dict[str, Any]] = []
    ratings: list[quality.Columns] | None = None
    steps = tqdm(total=2 + len(inputs["probe"]), desc="ingest", unit="table", disable=not progress)

    titles = read_titles(inputs["movies"][0], rejects)
    tables["movies"] = write(titles.movies, out / TABLES["movies"])
    files.append(titles.file_info)
    steps.update()

    for kind in ("probe", "ratings"):
        if inputs[kind]:
            path = out / TABLES[kind]
            counts = _reused(inputs[kind], path, raw, rejects, reuse) if kind == "ratings" and reuse else None
            if counts is None:
                counts, records = read_lines_table(inputs[kind], kind, path, raw, rejects)
                if kind == "ratings":
                    ratings = records
            files += counts
            tables[kind] = {"path": path.name, "rows": pq.ParquetFile(path).metadata.num_rows}
            steps.update()
    steps.close()

    if config.on_bad_lines == "skip":
        tables["rejects"] = write(pl.DataFrame(rejects.rows, schema=REJECTS_SCHEMA), out / TABLES["rejects"])
    input_lines = sum(f["lines"] for f in files)
    summary = {
        "tables": tables,
        "input_lines": input_lines,
        "accepted": input_lines - len(rejects.rows),
        "rejected": len(rejects.rows),
        "files": files,
        "movies_encoding": titles.encoding,
        "warnings": titles.warnings,
    }
    return summary, ratings


def _reused(paths: list[Path], dest: Path, raw: Path, rejects: Rejects, reuse: Reuse) -> list | None:
    """The ratings table from the published ingest's rows of unchanged files and a parse of the
    others; None when none is reusable (then everything is parsed)."""
    part = dest.with_name(Ingest.FRESH)
    names = [file_name(p, raw) for p in paths]

    def parse_fresh(fresh: list[Path]) -> list[dict[str, Any]]:
        return read_lines_table(fresh, "ratings", part, raw, rejects)[0]

    return reuse_rows(paths, names, dest, part, reuse, parse_fresh)


def with_quality(
    out: Path, summary: dict[str, Any], ratings: list[quality.Columns] | None = None
) -> dict[str, Any]:
    """Write quality.json beside the tables (from `ratings` where the parse kept them, else
    read back); the summary carries its findings."""
    if ratings is None:
        ratings = quality.columns_of(pl.read_parquet(out / Ingest.RATINGS), summary["files"])
    titled = pl.read_parquet(out / Ingest.MOVIES, columns=["movie_id"])["movie_id"]
    report = quality.check(ratings, titled, summary["files"], date.today())
    write_json(out / Ingest.QUALITY, report)
    summary["quality"] = {k: v for k, v in report.items() if k != "movies_without_title"}
    summary["quality"]["movies_without_title"] = len(report["movies_without_title"])
    summary["warnings"] = [*summary.get("warnings", []), *report["findings"]]
    return summary


def write(df: pl.DataFrame, path: Path) -> dict[str, Any]:
    df.write_parquet(path, compression="zstd")
    return {"path": path.name, "rows": df.height}
