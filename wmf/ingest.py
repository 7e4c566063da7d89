"""Ingest: the raw Netflix Prize files to typed Parquet tables.

Ratings files are first parsed by a strict byte scanner (wmf.ratings_parser) that
accepts only the clean layout, so the clean case reads the input once and keeps the
records in memory for quality.json. Anything else sends the files, and probe, to
the checked scan: every field is read as text by polars, then cast leniently, and
malformed lines are found vectorized: each row gets an `ok` flag, and only the rows
that fail it are collected, with their global row index, to recover file, line
number, text and reason afterwards.
movie_titles is small and irregular (no CSV quoting, commas inside titles,
several encodings in the wild), so it is parsed line by line in Python.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
from tqdm import tqdm

from wmf import quality, ratings_parser
from wmf.config import IngestConfig
from wmf.errors import BadInputError, MissingInputError
from wmf.reuse import Reuse
from wmf.reuse import ratings as reuse_rows
from wmf.store import write_json

RATINGS_SCHEMA = {"movie_id": pl.Int32, "user_id": pl.Int32, "rating": pl.Int8, "date": pl.Date}
MOVIES_SCHEMA = {"movie_id": pl.Int32, "year": pl.Int16, "title": pl.String}
PROBE_SCHEMA = {"movie_id": pl.Int32, "user_id": pl.Int32}
REJECTS_SCHEMA = {"file": pl.String, "line": pl.Int64, "text": pl.String, "reason": pl.String}

# Reason codes computed in polars for the (few) rows that fail the checks.
_REASONS = {
    1: "malformed MovieID line",
    2: "wrong number of fields (or an empty field)",
    3: "customer id is not a positive integer",
    4: "rating is not an integer in 1..5",
    5: "date is not YYYY-MM-DD",
    6: "line before any MovieID line",
    7: "line under a malformed MovieID line",
}
_NO_MOVIE, _BAD_MOVIE = 0, -1
QUALITY = "quality.json"


def find_inputs(raw: Path) -> dict[str, list[Path]]:
    """The raw files ingest reads: Kaggle's combined_data_*.txt or the original training_set/."""
    raw = Path(raw)
    if not raw.is_dir():
        raise MissingInputError(f"raw data folder {raw} does not exist")
    ratings = sorted(raw.glob("combined_data_*.txt")) or sorted(raw.glob("training_set/mv_*.txt"))
    if not ratings:
        raise MissingInputError(
            f"no ratings files in {raw}: expected combined_data_*.txt or training_set/mv_*.txt"
        )
    movies = [p for p in (raw / "movie_titles.csv", raw / "movie_titles.txt") if p.is_file()][:1]
    if not movies:
        raise MissingInputError(f"no movie_titles.csv (or movie_titles.txt) in {raw}")
    probe = [raw / "probe.txt"] if (raw / "probe.txt").is_file() else []
    return {"ratings": ratings, "movies": movies, "probe": probe}


@dataclass
class _Rejects:
    """Collects rejected lines, or raises on the first one in error mode."""

    raw: Path
    mode: str
    rows: list[dict[str, Any]]

    def add(self, path: Path, line: int, text: str, reason: str) -> None:
        if self.mode == "error":
            raise BadInputError(path, line, text, reason)
        self.rows.append({"file": _name(path, self.raw), "line": line, "text": text, "reason": reason})


def ingest(
    raw: Path, out: Path, config: IngestConfig, progress: bool = True, reuse: Reuse | None = None
) -> dict:
    """Parse RAW into OUT/{ratings,movies,probe,rejects}.parquet and quality.json; return counts
    for the manifest. `reuse`: the published ingest, whose rows of unchanged ratings files are
    taken instead of parsed again (wmf.reuse)."""
    summary, ratings = _parse(raw, out, config, progress, reuse)
    return _with_quality(Path(out), summary, ratings)


def _parse(
    raw: Path, out: Path, config: IngestConfig, progress: bool, reuse: Reuse | None = None
) -> tuple[dict, list[quality.Columns] | None]:
    """The tables and the manifest's counts; also the ratings when the parse kept them in memory."""
    raw, out = Path(raw), Path(out)
    inputs = find_inputs(raw)
    rejects = _Rejects(raw, config.on_bad_lines, [])
    tables: dict[str, dict[str, Any]] = {}
    files: list[dict[str, Any]] = []
    ratings: list[quality.Columns] | None = None
    steps = tqdm(total=2 + len(inputs["probe"]), desc="ingest", unit="table", disable=not progress)

    titles = _read_titles(inputs["movies"][0], rejects)
    tables["movies"] = _write(titles.movies, out / "movies.parquet")
    files.append(titles.file_info)
    steps.update()

    for kind in ("probe", "ratings"):
        if inputs[kind]:
            path = out / f"{kind}.parquet"
            counts = _reused(inputs[kind], path, raw, rejects, reuse) if kind == "ratings" and reuse else None
            if counts is None:
                counts, records = _read_lines_table(inputs[kind], kind, path, raw, rejects)
                if kind == "ratings":
                    ratings = records
            files += counts
            tables[kind] = {"path": path.name, "rows": pq.ParquetFile(path).metadata.num_rows}
            steps.update()
    steps.close()

    if config.on_bad_lines == "skip":
        table = pl.DataFrame(rejects.rows, schema=REJECTS_SCHEMA)
        tables["rejects"] = _write(table, out / "rejects.parquet")
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


def _reused(paths: list[Path], dest: Path, raw: Path, rejects: _Rejects, reuse: Reuse) -> list | None:
    """The ratings table from the published ingest's rows of unchanged files and a parse of the
    others; None when none is reusable (then everything is parsed)."""
    part = dest.with_name(f".fresh-{dest.name}")
    names = [_name(p, raw) for p in paths]

    def parse(fresh: list[Path]) -> list[dict[str, Any]]:
        return _read_lines_table(fresh, "ratings", part, raw, rejects)[0]

    return reuse_rows(paths, names, dest, part, reuse, parse)


def _with_quality(
    out: Path, summary: dict[str, Any], ratings: list[quality.Columns] | None = None
) -> dict[str, Any]:
    """Write quality.json beside the tables (from `ratings` where the parse kept them, else
    read back); the summary carries its findings."""
    if ratings is None:
        ratings = quality.columns_of(pl.read_parquet(out / "ratings.parquet"), summary["files"])
    titled = pl.read_parquet(out / "movies.parquet", columns=["movie_id"])["movie_id"]
    report = quality.check(ratings, titled, summary["files"], date.today())
    write_json(out / QUALITY, report)
    summary["quality"] = {k: v for k, v in report.items() if k != "movies_without_title"}
    summary["quality"]["movies_without_title"] = len(report["movies_without_title"])
    return summary


def _write(df: pl.DataFrame, path: Path) -> dict[str, Any]:
    df.write_parquet(path, compression="zstd")
    return {"path": path.name, "rows": df.height}


def _name(path: Path, raw: Path) -> str:
    return path.relative_to(raw).as_posix() if path.is_relative_to(raw) else str(path)


# --- ratings and probe: MovieID lines, then one record per line -------------------------------


def _read_lines_table(
    paths: list[Path], kind: str, dest: Path, raw: Path, rejects: _Rejects
) -> tuple[list[dict[str, Any]], list[quality.Columns] | None]:
    """Write PATHS (ratings or probe layout) into DEST; report bad lines; per-file line counts,
    and the records where the clean case kept them in memory."""
    fast = _fast_ratings(paths, dest) if kind == "ratings" else None
    if fast is not None:
        lines, records = fast
        counts = [
            {"name": _name(path, raw), "kind": kind, "lines": n, "records": n - headers, "rejected": 0}
            for path, (n, headers) in zip(paths, lines, strict=True)
        ]
        return counts, records
    lf, ok, reason = _checked_scan(paths, kind)
    columns = list(RATINGS_SCHEMA if kind == "ratings" else PROBE_SCHEMA)
    stats = _sink(lf, ok, columns, dest)
    bad = lf.filter(~ok).select("path", "row", reason.alias("reason"))
    stats_by_path = {row["path"]: row for row in stats.iter_rows(named=True)}
    for path in paths:
        if stats_by_path.get(str(path), {}).get("lines", 0) == 0:
            # Even in skip mode: an empty file is a broken download, not a line to skip.
            raise BadInputError(path, 1, "", f"empty {kind} file")
    if stats["rejected"].sum():
        if rejects.mode == "error":
            bad = bad.head(1)
        first_row = {Path(p): s["first_row"] for p, s in stats_by_path.items()}
        for path, line, text, code in _locate(bad.collect(engine="streaming"), first_row):
            rejects.add(path, line, text, _REASONS[code])
    counts = [
        {
            "name": _name(path, raw),
            "kind": kind,
            "lines": stats_by_path[str(path)]["lines"],
            "records": stats_by_path[str(path)]["records"],
            "rejected": stats_by_path[str(path)]["rejected"],
        }
        for path in paths
    ]
    return counts, None


def _sink(lf: pl.LazyFrame, ok: pl.Expr, columns: list[str], dest: Path) -> pl.DataFrame:
    """Write the good records to DEST and return per-file first row, line and bad-line counts."""
    record = ok & ~pl.col("header") & ~pl.col("blank")
    good = lf.filter(record).select(columns).sink_parquet(dest, lazy=True)
    # Only sums here: collecting the bad rows in the same pass makes polars buffer the
    # whole input (measured: 2.8 GB instead of 0.5 GB for 40 M lines).
    per_file = lf.group_by("path").agg(
        pl.col("row").min().alias("first_row"),
        (~pl.col("blank")).sum().alias("lines"),
        (~ok).sum().alias("rejected"),
        record.sum().alias("records"),
    )
    return pl.collect_all([good, per_file], engine="streaming")[1]


def _scan(paths: list[Path], schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    """Rows of the Netflix line layout: `MovieID:` lines land in column a, the others null."""
    return pl.scan_csv(
        paths,
        has_header=False,
        new_columns=list(schema),
        schema=schema,
        missing_columns="insert",  # MovieID lines have one field
        truncate_ragged_lines=True,  # a 5th field still shows up in `extra`
        quote_char=None,  # a stray quote must not swallow the following lines
        encoding="utf8-lossy",
        include_file_paths="path",
        row_index_name="row",
    )


def _fast_ratings(
    paths: list[Path], dest: Path
) -> tuple[list[tuple[int, int]], list[quality.Columns]] | None:
    """The clean case: per-file (lines, MovieID lines) and the records, written to DEST; None
    when anything is not clean (then the checked scan finds and names it)."""
    parsed = ratings_parser.parse(paths)
    if parsed is None:
        return None
    frame = pl.concat([p.frame() for p in parsed], rechunk=False)
    frame.write_parquet(dest, compression="zstd", statistics=True)
    return [(p.lines, p.movie_lines) for p in parsed], [
        quality.Columns(p.movie_id, p.user_id, p.rating, p.date) for p in parsed
    ]


def _checked_scan(paths: list[Path], kind: str) -> tuple[pl.LazyFrame, pl.Expr, pl.Expr]:
    """Lazy rows of PATHS with parsed columns, the `ok` check and the reason code of a bad row."""
    lf = _scan(paths, dict.fromkeys(["a", "b", "c", "extra"], pl.String))
    a, b, c, extra = pl.col("a"), pl.col("b"), pl.col("c"), pl.col("extra")
    blank = (a.is_null() | (a.str.strip_chars() == "")) & b.is_null() & c.is_null() & extra.is_null()
    header = a.str.ends_with(":") & b.is_null() & c.is_null() & extra.is_null()
    movie = a.str.strip_suffix(":").cast(pl.Int32, strict=False)
    # Forward-fill the block's movie id, restarting at every file so a file that does not
    # open with a MovieID line cannot inherit the previous file's movie.
    movie_id = (
        pl.when(header)
        .then(pl.when(movie > 0).then(movie).otherwise(_BAD_MOVIE))
        .when(pl.col("path") != pl.col("path").shift(1))
        .then(_NO_MOVIE)
        .forward_fill()
        .fill_null(_NO_MOVIE)
        .cast(pl.Int32)
    )
    lf = lf.with_columns(
        blank.alias("blank"),
        header.alias("header"),
        movie_id.alias("movie_id"),
        a.cast(pl.Int32, strict=False).alias("user_id"),
    )
    # Conditions are null where a cast failed; a null must fail the check, not pass it.
    user_ok = (pl.col("user_id") > 0).fill_null(False)
    block_ok = (pl.col("movie_id") > 0).fill_null(False)
    if kind == "ratings":
        lf = lf.with_columns(
            b.cast(pl.Int8, strict=False).alias("rating"),
            c.str.to_date("%Y-%m-%d", strict=False).alias("date"),
        )
        fields_ok = b.is_not_null() & c.is_not_null() & extra.is_null()
        date_ok = pl.col("date").is_not_null()
        rating_ok = pl.col("rating").is_between(1, 5).fill_null(False)
        record_ok = fields_ok & user_ok & rating_ok & date_ok & block_ok
    else:
        fields_ok = b.is_null() & c.is_null() & extra.is_null()
        record_ok = fields_ok & user_ok & block_ok
    header_ok = pl.col("header") & block_ok
    ok = pl.col("blank") | header_ok | (~pl.col("header") & record_ok)

    reason = pl.when(pl.col("header")).then(1).when(~fields_ok).then(2).when(~user_ok).then(3)
    if kind == "ratings":
        reason = reason.when(~rating_ok).then(4).when(~date_ok).then(5)
    reason = reason.when(pl.col("movie_id") == _NO_MOVIE).then(6).otherwise(7)
    return lf, ok.fill_null(False), reason


def _locate(bad_rows: pl.DataFrame, first_row: dict[Path, int]) -> Iterable[tuple[Path, int, str, int]]:
    """(path, 1-based line, text, reason code) of each bad row, reading only the files involved."""
    for (path_str,), group in bad_rows.sort("row").group_by("path", maintain_order=True):
        path = Path(path_str)
        lines = (group["row"] - first_row[path] + 1).to_list()
        texts = _line_texts(path, lines)
        yield from zip([path] * len(lines), lines, texts, group["reason"].to_list(), strict=True)


def _line_texts(path: Path, lines: list[int]) -> list[str]:
    """The text of the given (ascending) 1-based line numbers of PATH, without the line ending."""
    wanted = dict.fromkeys(lines, "")
    last = lines[-1]
    with path.open("rb") as f:
        for number, raw_line in enumerate(f, 1):
            if number in wanted:
                wanted[number] = raw_line.rstrip(b"\r\n").decode("utf-8", errors="replace")
            if number >= last:
                break
    return [wanted[n] for n in lines]


# --- movie_titles: id,year,title with commas in titles and no quoting ---------------------------


def _decode_titles(data: bytes) -> tuple[str, str]:
    """Text and encoding of movie_titles bytes (the original is latin-1; copies vary).

    UTF-8 is tried first (pure ASCII and re-encoded copies). Otherwise latin-1,
    unless that yields C1 control characters (bytes 0x80-0x9F), which never
    occur in titles but are accented letters in Mac Roman, the encoding a Mac
    spreadsheet round-trip leaves behind (0x8E = é).
    """
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    text = data.decode("latin-1")
    if any("\x80" <= ch <= "\x9f" for ch in text):
        return data.decode("mac_roman"), "mac_roman"
    return text, "latin-1"


@dataclass
class _Titles:
    movies: pl.DataFrame
    file_info: dict[str, Any]
    encoding: str
    warnings: list[str]


def _read_titles(path: Path, rejects: _Rejects) -> _Titles:
    """Parse movie_titles: split on the first two commas only; `NULL` year is null.

    A first line naming a title column instead of holding an id is a header row
    (added by some copies) and is skipped. Titles cut at their first comma by a spreadsheet round-trip
    cannot be repaired and are kept as they are.
    """
    text, encoding = _decode_titles(path.read_bytes())
    n_rejected = len(rejects.rows)
    ids: list[int] = []
    years: list[int | None] = []
    titles: list[str] = []
    seen: set[int] = set()
    n_lines = 0
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        n_lines += 1
        fields = line.split(",", 2)
        if n_lines == 1 and not fields[0].strip().isdigit() and "title" in line.lower():
            continue  # header row
        reason = _title_problem(fields, seen)
        if reason:
            rejects.add(path, number, line, reason)
            continue
        movie_id = int(fields[0])
        seen.add(movie_id)
        ids.append(movie_id)
        years.append(None if fields[1] == "NULL" else int(fields[1]))
        titles.append(fields[2])
    if not ids:
        raise BadInputError(path, 1, text.split("\n", 1)[0], "no movie title lines")
    df = pl.DataFrame({"movie_id": ids, "year": years, "title": titles}, schema=MOVIES_SCHEMA)
    warnings = []
    lost = sum("\ufffd" in t for t in titles)
    if lost:
        warnings.append(
            f"{path.name}: {lost} title(s) contain U+FFFD (a character lost by an earlier "
            "re-encoding of the file)"
        )
    if encoding == "mac_roman":
        warnings.append(f"{path.name}: decoded as Mac Roman (a spreadsheet round-trip copy?)")
    info = {
        "name": _name(path, rejects.raw),
        "kind": "movies",
        "lines": n_lines,
        "rejected": len(rejects.rows) - n_rejected,
    }
    return _Titles(df, info, encoding, warnings)


def _title_problem(fields: list[str], seen: set[int]) -> str | None:
    if len(fields) < 3:
        return "wrong number of fields (expected id,year,title)"
    movie_id, year, title = fields
    if not (movie_id.isascii() and movie_id.isdigit() and 0 < int(movie_id) < 2**31):
        return "movie id is not a positive integer"
    if int(movie_id) in seen:
        return "duplicate movie id"
    if year != "NULL" and not (year.isascii() and year.isdigit() and 1800 <= int(year) <= 2100):
        return "year is not a year or NULL"
    if not title.strip():
        return "empty title"
    return None


# --- partitioned: each group of ratings files parsed on its own, e.g. on a Dask cluster -------

Mapper = Callable[[Callable[[tuple[Path, Path]], dict], list[tuple[Path, Path]]], Iterable[dict]]


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
    work = out / ".parts"
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
            (first_out / f"{name}.parquet").rename(out / f"{name}.parquet")
    parts = [part_out / "ratings.parquet" for _, part_out in jobs]
    pl.scan_parquet(parts).sink_parquet(out / "ratings.parquet", compression="zstd")
    summary["tables"]["ratings"] = {
        "path": "ratings.parquet",
        "rows": sum(r["tables"]["ratings"]["rows"] for r in results),
    }
    titles = {_name(p, raw) for p in inputs["movies"]}
    for result in results[1:]:
        summary["files"] += [f for f in result["files"] if f["name"] not in titles]
    if config.on_bad_lines == "skip":
        rejects = pl.concat(
            [pl.read_parquet(first_out / "rejects.parquet")]
            + [
                pl.read_parquet(o / "rejects.parquet").filter(~pl.col("file").is_in(titles))
                for _, o in jobs[1:]
            ]
        )
        summary["tables"]["rejects"] = _write(rejects, out / "rejects.parquet")
    summary["input_lines"] = sum(f["lines"] for f in summary["files"])
    summary["rejected"] = summary["tables"]["rejects"]["rows"] if "rejects" in summary["tables"] else 0
    summary["accepted"] = summary["input_lines"] - summary["rejected"]
    summary["parts"] = n_parts
    shutil.rmtree(work)
    return _with_quality(out, summary)


def _ingest_part(job: tuple[Path, Path], config: IngestConfig) -> dict:
    part_raw, part_out = job
    part_out.mkdir(parents=True)
    try:
        return _parse(part_raw, part_out, config, progress=False)[0]
    except BadInputError as exc:  # name the user's file, not the part's link to it
        raise BadInputError(Path(exc.path).resolve(), exc.line_number, exc.line, exc.reason) from None
