"""movie_titles: `id,year,title` lines with commas inside titles and no quoting.

The file is small and irregular (several encodings in the wild, a header row in some
copies, `NULL` years), so it is parsed line by line in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from wmf.errors import BadInputError
from wmf.stages.ingest.rejects import Rejects, file_name
from wmf.stages.ingest.schema import MOVIES_SCHEMA


def decode_titles(data: bytes) -> tuple[str, str]:
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
class Titles:
    movies: pl.DataFrame
    file_info: dict[str, Any]
    encoding: str
    warnings: list[str]


def read_titles(path: Path, rejects: Rejects) -> Titles:
    """Parse movie_titles: split on the first two commas only; `NULL` year is null.

    A first line naming a title column instead of holding an id is a header row
    (added by some copies) and is skipped. Titles cut at their first comma by a spreadsheet round-trip
    cannot be repaired and are kept as they are.
    """
    text, encoding = decode_titles(path.read_bytes())
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
        "name": file_name(path, rejects.raw),
        "kind": "movies",
        "lines": n_lines,
        "rejected": len(rejects.rows) - n_rejected,
    }
    return Titles(df, info, encoding, warnings)


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
