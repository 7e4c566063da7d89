"""A partitioned ingest: groups of ratings files parsed independently, e.g. on a Dask cluster."""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import polars as pl

from wmf.config import IngestConfig
from wmf.errors import BadInputError
from wmf.layout import Ingest
from wmf.stages import Mapper
from wmf.stages.ingest.inputs import find_inputs
from wmf.stages.ingest.parse import TABLES, parse, with_quality, write
from wmf.stages.ingest.rejects import file_name


def ingest_partitioned(
    raw: Path, out: Path, config: IngestConfig, mapper: Mapper, max_parts: int = 16, progress: bool = False
) -> dict:
    """The tables of `ingest`, with the ratings files parsed in up to MAX_PARTS independent parts.

    `mapper(function, jobs)` runs the parts (built-in `map`, or a Dask client's map and
    gather); the ratings parts are then concatenated in file order, so the tables equal
    those of `ingest`. Each part sees the titles file too; its lines count once.
    """
    raw, out = Path(raw), Path(out)
    inputs = find_inputs(raw)
    ratings = inputs["ratings"]
    n_parts = min(max_parts, len(ratings))
    groups = [
        ratings[i * len(ratings) // n_parts : (i + 1) * len(ratings) // n_parts] for i in range(n_parts)
    ]
    work = out / Ingest.PARTS
    jobs = []
    for i, group in enumerate(groups):
        part_raw = work / f"raw-{i}"
        for path in group + inputs["movies"] + (inputs["probe"] if i == 0 else []):
            link = part_raw / path.relative_to(raw)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
        jobs.append((part_raw, work / f"out-{i}"))
    results = list(mapper(partial(_ingest_part, config=config), jobs))

    first_out = jobs[0][1]
    summary = results[0]
    for name in ("movies", "probe"):
        if name in summary["tables"]:
            (first_out / TABLES[name]).rename(out / TABLES[name])
    parts = [part_out / Ingest.RATINGS for _, part_out in jobs]
    pl.scan_parquet(parts).sink_parquet(out / Ingest.RATINGS, compression="zstd")
    summary["tables"]["ratings"] = {
        "path": Ingest.RATINGS,
        "rows": sum(r["tables"]["ratings"]["rows"] for r in results),
    }
    titles = {file_name(p, raw) for p in inputs["movies"]}
    for result in results[1:]:
        summary["files"] += [f for f in result["files"] if f["name"] not in titles]
    if config.on_bad_lines == "skip":
        rejects = pl.concat(
            [pl.read_parquet(first_out / Ingest.REJECTS)]
            + [pl.read_parquet(o / Ingest.REJECTS).filter(~pl.col("file").is_in(titles)) for _, o in jobs[1:]]
        )
        summary["tables"]["rejects"] = write(rejects, out / Ingest.REJECTS)
    summary["input_lines"] = sum(f["lines"] for f in summary["files"])
    summary["rejected"] = summary["tables"]["rejects"]["rows"] if "rejects" in summary["tables"] else 0
    summary["accepted"] = summary["input_lines"] - summary["rejected"]
    summary["parts"] = n_parts
    shutil.rmtree(work)
    return with_quality(out, summary)


def _ingest_part(job: tuple[Path, Path], config: IngestConfig) -> dict:
    part_raw, part_out = job
    part_out.mkdir(parents=True)
    try:
        return parse(part_raw, part_out, config, progress=False)[0]
    except BadInputError as exc:  # name the user's file, not the part's link to it
        raise BadInputError(Path(exc.path).resolve(), exc.line_number, exc.line, exc.reason) from None
