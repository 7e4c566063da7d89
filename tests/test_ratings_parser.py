"""The clean-case byte scanner against polars' own reading of the same text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from wmf.stages.ingest import ratings_parser


def random_file(path: Path, rng: np.random.Generator, newline: str = "\n") -> pl.DataFrame:
    """A clean ratings file of random blocks and dates (leap days included); its expected rows."""
    rows, lines = [], []
    start = dt.date(1899, 12, 25).toordinal()
    for movie in rng.integers(1, 2**31, 40):
        lines.append(f"{movie}:")
        for _ in range(int(rng.integers(0, 60))):
            user, rating = int(rng.integers(1, 2**31)), int(rng.integers(1, 6))
            day = dt.date.fromordinal(start + int(rng.integers(0, 80_000)))
            lines.append(f"{user},{rating},{day.isoformat()}")
            rows.append((int(movie), user, rating, day))
    lines.append("2000000000,5,2000-02-29")  # the largest ids and a leap day
    rows.append((int(movie), 2_000_000_000, 5, dt.date(2000, 2, 29)))
    path.write_bytes(newline.join(lines).encode() + newline.encode())
    schema = {"movie_id": pl.Int32, "user_id": pl.Int32, "rating": pl.Int8, "date": pl.Date}
    return pl.DataFrame(rows, schema=schema, orient="row"), len(lines)


@pytest.mark.parametrize("chunk", [1 << 20, 64])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_parse_equals_the_text(
    chunk: int, newline: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every id, rating and date read back; with tiny chunks, lines straddle every boundary."""
    monkeypatch.setattr(ratings_parser, "_CHUNK", chunk)
    expected, n_lines = random_file(tmp_path / "a.txt", np.random.default_rng(len(newline)), newline)
    (parsed,) = ratings_parser.parse([tmp_path / "a.txt"])
    assert parsed.frame().equals(expected)
    assert (parsed.lines, parsed.movie_lines) == (n_lines, 40)


@pytest.mark.parametrize(
    "text",
    [
        "1:\n10,5,2005-01-02\n\n",  # blank line
        "10,5,2005-01-02\n",  # no MovieID line first
        "1:\n10,5,2005-02-29\n",  # not a leap year
        "1:\n10,5,2004-04-31\n",
        "1:\n2147483648,5,2005-01-02\n",  # over int32
        "1:\n10,5,2005-01-02\r",  # a lone CR at the end
        "1:\n10,5,2005-01-02 \n",
        "1:\n+10,5,2005-01-02\n",
        "0:\n10,5,2005-01-02\n",
        "",
    ],
)
def test_anything_unclean_is_refused(text: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(text)
    (tmp_path / "b.txt").write_text("1:\n10,5,2005-01-02\n")
    assert ratings_parser.parse([tmp_path / "b.txt"]) is not None
    assert ratings_parser.parse([tmp_path / "b.txt", tmp_path / "a.txt"]) is None


def test_a_line_longer_than_a_chunk_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratings_parser, "_CHUNK", 8)
    (tmp_path / "a.txt").write_text("1:\n10,5,2005-01-02\n")
    assert ratings_parser.parse([tmp_path / "a.txt"]) is None
