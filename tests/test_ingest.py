"""Ingest on the real Netflix samples and on hand-written malformed files."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

import wmf.stages.ingest.lines as ingest_module
from wmf.config import IngestConfig
from wmf.errors import BadInputError, MissingInputError
from wmf.stages.ingest.inputs import find_inputs
from wmf.stages.ingest.parse import ingest
from wmf.stages.ingest.schema import MOVIES_SCHEMA, PROBE_SCHEMA, RATINGS_SCHEMA, REJECTS_SCHEMA

ERROR = IngestConfig(on_bad_lines="error")
SKIP = IngestConfig(on_bad_lines="skip")
TITLES = "1,2003,Dinosaur Planet\n2,NULL,Isle of Man, TT\n3,1997,Character\n"


def make_raw(root: Path, ratings: dict[str, str | bytes], titles: str = TITLES) -> Path:
    """A RAW folder with the given ratings files (name -> content) and a small titles file."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in ratings.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
    (root / "movie_titles.csv").write_text(titles, encoding="latin-1")
    return root


def run(raw: Path, tmp_path: Path, config: IngestConfig = ERROR) -> tuple[dict, Path]:
    out = tmp_path / "out"
    out.mkdir(parents=True)
    return ingest(raw, out, config, progress=False), out


def read(out: Path, table: str, schema: dict) -> pl.DataFrame:
    df = pl.read_parquet(out / f"{table}.parquet")
    assert dict(df.schema) == schema
    return df


# --- real samples ----------------------------------------------------------------------------


@pytest.fixture
def sample_raw(sample_dir: Path, tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(sample_dir / "combined_data_1.movies_1-20.txt", raw / "combined_data_1.txt")
    shutil.copy(sample_dir / "movie_titles.csv", raw / "movie_titles.csv")
    shutil.copy(sample_dir / "probe.head_2088_lines.txt", raw / "probe.txt")
    return raw


def test_real_combined_sample(sample_raw: Path, tmp_path: Path) -> None:
    result, out = run(sample_raw, tmp_path)
    ratings = read(out, "ratings", RATINGS_SCHEMA)
    assert ratings.height == result["tables"]["ratings"]["rows"] == 42_813
    assert ratings["user_id"].n_unique() == 38_152
    counts = dict(ratings.group_by("movie_id").len().iter_rows())
    assert sorted(counts) == list(range(1, 21))
    assert counts[1] == 547 and counts[8] == 14_910
    assert ratings["date"].min() == dt.date(2000, 1, 6)
    assert ratings["date"].max() == dt.date(2005, 12, 31)
    assert ratings.row(0) == (1, 1488844, 3, dt.date(2005, 9, 6))  # input order kept
    assert ratings["rating"].is_between(1, 5).all()

    probe = read(out, "probe", PROBE_SCHEMA)
    assert probe.height == 2_031
    assert probe["movie_id"].n_unique() == 58
    assert probe["movie_id"].unique(maintain_order=True).head(3).to_list() == [1, 10, 1000]
    assert probe.row(-1) == (probe["movie_id"][-1], 2597320)  # last line has no newline

    ratings_lines = 42_813 + 20
    probe_lines = 2_031 + 58
    assert result["input_lines"] == 17_770 + probe_lines + ratings_lines
    assert result["accepted"] == result["input_lines"] and result["rejected"] == 0
    assert {f["name"]: f["lines"] for f in result["files"]} == {
        "movie_titles.csv": 17_770,
        "probe.txt": probe_lines,
        "combined_data_1.txt": ratings_lines,
    }
    assert set(result["tables"]) == {"ratings", "movies", "probe"}
    assert not (out / "rejects.parquet").exists()


def test_real_training_set_layout(sample_dir: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "training_set").mkdir(parents=True)
    shutil.copy(sample_dir / "mv_0002043.txt", raw / "training_set" / "mv_0002043.txt")
    shutil.copy(sample_dir / "movie_titles.csv", raw / "movie_titles.txt")
    assert find_inputs(raw)["ratings"] == [raw / "training_set" / "mv_0002043.txt"]
    result, out = run(raw, tmp_path)
    ratings = read(out, "ratings", RATINGS_SCHEMA)
    assert ratings.height == 7_871 == ratings["user_id"].n_unique()
    assert ratings["movie_id"].unique().to_list() == [2043]
    assert "probe" not in result["tables"]


def test_real_movie_titles(sample_raw: Path, tmp_path: Path) -> None:
    _, out = run(sample_raw, tmp_path)
    movies = read(out, "movies", MOVIES_SCHEMA)
    assert movies.height == 17_770
    assert movies["movie_id"].to_list() == list(range(1, 17_771))
    titles = dict(zip(movies["movie_id"], movies["title"], strict=True))
    assert titles[6483] == "Smokey Joe's Café"
    assert titles[72] == "At Home Among Strangers, A Stranger Among His Own"
    assert movies["title"].str.contains(",").sum() == 336
    assert movies["title"].str.contains('"').sum() == 7
    null_years = movies.filter(pl.col("year").is_null())["movie_id"].to_list()
    assert null_years == [4388, 4794, 7241, 10782, 15918, 16678, 17667]


VARIANTS = {
    "crlf__Nareshvrao_movie_titles.txt": ("Smokey Joe's Café", "latin-1"),
    "header__elephantscale_movie-titles.csv": ("Smokey Joe's Café", "latin-1"),
    # The é was lost before we saw the file: kept as U+FFFD and reported.
    "utf8_replacement_char__felixnie_movie_titles_original.csv": ("Smokey Joe's Caf\ufffd", "utf-8"),
    # Spreadsheet round-trip: header, CRLF, no final newline, Mac Roman é (0x8E).
    "crlf_header_no_final_newline_commas_truncated__eredmiles_movie_titles.csv": (
        "Smokey Joe's Café",
        "mac_roman",
    ),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_movie_titles_variants(variant: str, sample_dir: Path, sample_raw: Path, tmp_path: Path) -> None:
    shutil.copy(sample_dir / "movie_titles_variants" / variant, sample_raw / "movie_titles.csv")
    result, out = run(sample_raw, tmp_path)
    movies = read(out, "movies", MOVIES_SCHEMA)
    assert movies["movie_id"].to_list() == list(range(1, 17_771))
    titles = dict(zip(movies["movie_id"], movies["title"], strict=True))
    title, encoding = VARIANTS[variant]
    assert titles[6483] == title
    assert result["movies_encoding"] == encoding
    assert movies["year"].null_count() == 7
    assert not movies["title"].str.contains("\r").any()
    assert titles[17770] == "Alien Hunter"
    if "truncated" in variant:
        # Cut at the first comma by the spreadsheet: nothing left to recover.
        assert titles[72] == "At Home Among Strangers"
    if encoding != "latin-1":
        assert result["warnings"]


# --- layouts, blank lines, CRLF --------------------------------------------------------------


def test_crlf_blank_lines_and_several_files(tmp_path: Path) -> None:
    raw = make_raw(
        tmp_path / "raw",
        {
            "combined_data_2.txt": "3:\n30,1,2001-01-01\n",
            "combined_data_1.txt": "1:\r\n10,5,2005-01-02\r\n\r\n2:\r\n11,4,2005-01-03\r\n\r\n",
        },
    )
    result, out = run(raw, tmp_path)
    ratings = read(out, "ratings", RATINGS_SCHEMA)
    assert ratings.rows() == [
        (1, 10, 5, dt.date(2005, 1, 2)),
        (2, 11, 4, dt.date(2005, 1, 3)),
        (3, 30, 1, dt.date(2001, 1, 1)),
    ]
    assert [f["name"] for f in result["files"]] == [
        "movie_titles.csv",
        "combined_data_1.txt",
        "combined_data_2.txt",
    ]
    assert result["input_lines"] == result["accepted"] == 3 + 4 + 2


def test_missing_inputs(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError, match="does not exist"):
        find_inputs(tmp_path / "nowhere")
    raw = make_raw(tmp_path / "raw", {})
    with pytest.raises(MissingInputError, match=str(raw)):
        find_inputs(raw)
    (raw / "combined_data_1.txt").write_text("1:\n10,5,2005-01-02\n")
    (raw / "movie_titles.csv").unlink()
    with pytest.raises(MissingInputError, match=f"movie_titles.csv.*{raw}"):
        find_inputs(raw)


# --- malformed lines -------------------------------------------------------------------------

GOOD = "1:\n10,5,2005-01-02\n"
BAD_LINES = {
    "non-numeric user": ("x10,3,2005-01-02", "customer id"),
    "negative user": ("-4,3,2005-01-02", "customer id"),
    "rating too high": ("10,6,2005-01-02", "rating"),
    "rating zero": ("10,0,2005-01-02", "rating"),
    "rating not a number": ("10,a,2005-01-02", "rating"),
    "impossible date": ("10,3,2005-02-30", "date"),
    "date format": ("10,3,02/01/2005", "date"),
    "date with time": ("10,3,2005-01-02T10:00", "date"),
    "month 13": ("10,3,2005-13-01", "date"),
    "too many fields": ("10,3,2005-01-02,7", "fields"),
    "too few fields": ("10,3", "fields"),
    "empty field": ("10,,2005-01-02", "fields"),
    "bad MovieID": ("x1:", "MovieID"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_line_raises_with_file_line_and_text(case: str, tmp_path: Path) -> None:
    line, reason = BAD_LINES[case]
    raw = make_raw(tmp_path / "raw", {"combined_data_1.txt": f"{GOOD}\n{line}\n11,4,2005-01-03\n"})
    with pytest.raises(BadInputError) as info:
        run(raw, tmp_path)
    err = info.value
    assert (Path(err.path), err.line_number, err.line) == (raw / "combined_data_1.txt", 4, line)
    assert reason in err.reason
    assert "combined_data_1.txt:4:" in str(err) and repr(line) in str(err)


def test_bad_line_in_second_file_names_that_file(tmp_path: Path) -> None:
    raw = make_raw(
        tmp_path / "raw",
        {"combined_data_1.txt": GOOD * 3, "combined_data_2.txt": "7:\r\n70,3,2005-01-02\r\n70,9,x\r\n"},
    )
    with pytest.raises(BadInputError) as info:
        run(raw, tmp_path)
    assert (info.value.path, info.value.line_number, info.value.line) == (
        str(raw / "combined_data_2.txt"),
        3,
        "70,9,x",
    )


def test_rating_before_any_movie_line_even_in_a_later_file(tmp_path: Path) -> None:
    raw = make_raw(
        tmp_path / "raw", {"combined_data_1.txt": GOOD, "combined_data_2.txt": "\n20,3,2005-01-02\n"}
    )
    with pytest.raises(BadInputError, match="before any MovieID") as info:
        run(raw, tmp_path)
    assert (Path(info.value.path).name, info.value.line_number) == ("combined_data_2.txt", 2)


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_empty_file_raises_in_both_modes(content: str, tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "raw", {"combined_data_1.txt": GOOD, "combined_data_2.txt": content})
    for config in (ERROR, SKIP):
        with pytest.raises(BadInputError, match=r"combined_data_2\.txt:1: empty ratings file"):
            run(raw, tmp_path / config.on_bad_lines)


def test_skip_mode_counts_add_up_and_rejects_are_kept(tmp_path: Path) -> None:
    ratings = "\r\n".join(
        [
            "5,3,2005-01-02",  # 1: before any MovieID line
            "1:",
            "10,5,2005-01-02",
            "",  # blank: neither input nor rejected
            "10,7,2005-01-02",  # 5
            "11,4,2005-01-03",
            "x2:",  # 7: bad MovieID, and the block under it
            "12,4,2005-01-03",  # 8
            "3:",
            "13,1,2004-12-31,extra",  # 10
            "14,2,2004-12-31",
        ]
    )
    titles = TITLES + "four,1999,Bad Id\n5,1999\n"
    raw = make_raw(tmp_path / "raw", {"combined_data_1.txt": ratings}, titles)
    (raw / "probe.txt").write_text("1:\n10\n10,3\n")
    result, out = run(raw, tmp_path, SKIP)

    assert read(out, "ratings", RATINGS_SCHEMA)[["movie_id", "user_id"]].rows() == [
        (1, 10),
        (1, 11),
        (3, 14),
    ]
    assert read(out, "probe", PROBE_SCHEMA).rows() == [(1, 10)]
    assert read(out, "movies", MOVIES_SCHEMA).height == 3
    rejects = read(out, "rejects", REJECTS_SCHEMA)
    assert rejects.select("file", "line", "text").rows() == [
        ("movie_titles.csv", 4, "four,1999,Bad Id"),
        ("movie_titles.csv", 5, "5,1999"),
        ("probe.txt", 3, "10,3"),
        ("combined_data_1.txt", 1, "5,3,2005-01-02"),
        ("combined_data_1.txt", 5, "10,7,2005-01-02"),
        ("combined_data_1.txt", 7, "x2:"),
        ("combined_data_1.txt", 8, "12,4,2005-01-03"),
        ("combined_data_1.txt", 10, "13,1,2004-12-31,extra"),
    ]
    assert rejects["reason"].to_list()[3:] == [
        "line before any MovieID line",
        "rating is not an integer in 1..5",
        "malformed MovieID line",
        "line under a malformed MovieID line",
        "wrong number of fields (or an empty field)",
    ]
    assert result["rejected"] == rejects.height == result["tables"]["rejects"]["rows"] == 8
    assert result["input_lines"] == 5 + 3 + 10
    assert result["accepted"] + result["rejected"] == result["input_lines"]
    assert {f["name"]: f["rejected"] for f in result["files"]} == {
        "movie_titles.csv": 2,
        "probe.txt": 1,
        "combined_data_1.txt": 5,
    }


def test_skip_mode_clean_input_writes_empty_rejects(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "raw", {"combined_data_1.txt": GOOD})
    result, out = run(raw, tmp_path, SKIP)
    assert read(out, "rejects", REJECTS_SCHEMA).height == 0
    assert result["rejected"] == 0 and result["tables"]["rejects"]["rows"] == 0


@pytest.mark.parametrize(
    ("line", "reason"),
    [("x,2000,T", "movie id"), ("4,20x0,T", "year"), ("4,2000", "fields"), ("1,2000,Dup", "duplicate")],
)
def test_bad_title_line_raises(line: str, reason: str, tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "raw", {"combined_data_1.txt": GOOD}, TITLES + line + "\n")
    with pytest.raises(BadInputError, match=reason) as info:
        run(raw, tmp_path)
    assert (Path(info.value.path).name, info.value.line_number, info.value.line) == (
        "movie_titles.csv",
        4,
        line,
    )


def test_probe_rating_line_raises(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "raw", {"combined_data_1.txt": GOOD})
    (raw / "probe.txt").write_text("1:\n10\n10,3,2005-01-02")
    with pytest.raises(BadInputError, match=r"probe\.txt:3: wrong number of fields"):
        run(raw, tmp_path)


def test_checked_scan_matches_fast_path(sample_raw: Path, tmp_path: Path) -> None:
    """One bad line sends the whole file through the slower checked scan: same good rows."""
    _, clean_out = run(sample_raw, tmp_path / "clean")
    with (sample_raw / "combined_data_1.txt").open("a") as f:
        f.write("20,3,2005-13-01\n")
    result, out = run(sample_raw, tmp_path / "bad", SKIP)
    assert result["rejected"] == 1
    assert read(out, "ratings", RATINGS_SCHEMA).equals(read(clean_out, "ratings", RATINGS_SCHEMA))
    assert read(out, "probe", PROBE_SCHEMA).equals(read(clean_out, "probe", PROBE_SCHEMA))
    assert read(out, "rejects", REJECTS_SCHEMA).row(0) == (
        "combined_data_1.txt",
        42_813 + 20 + 1,
        "20,3,2005-13-01",
        "date is not YYYY-MM-DD",
    )


def test_first_title_line_is_a_header_only_if_it_names_the_columns(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "raw", {"combined_data_1.txt": GOOD}, "id,year,name\n" + TITLES)
    with pytest.raises(BadInputError, match="movie id") as info:
        run(raw, tmp_path)
    assert info.value.line_number == 1


# --- the one-pass fast path and the guards that send a file to the checked scan ---------------


@pytest.fixture
def checked_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds ("ratings", "probe") the checked scan was run for."""
    calls: list[str] = []
    original = ingest_module._checked_scan

    def spy(paths: list[Path], kind: str) -> tuple:
        calls.append(kind)
        return original(paths, kind)

    monkeypatch.setattr(ingest_module, "_checked_scan", spy)
    return calls


@pytest.mark.parametrize(
    "content",
    [
        "1:\n10,5,2005-01-02\n2:\n11,4,2005-01-03\n",
        "1:\r\n10,5,2005-01-02\r\n2:\r\n11,4,2005-01-03\r\n",
        "1:\n10,5,2005-01-02\n2:\n11,4,2005-01-03",  # no final newline
        "1:\n10,5,2005-01-02\n11,4,2005-01-03\n2:",  # a last MovieID line with no records
    ],
)
def test_clean_input_takes_the_fast_path(content: str, tmp_path: Path, checked_calls: list[str]) -> None:
    raw = make_raw(
        tmp_path / "raw", {"combined_data_1.txt": content, "combined_data_2.txt": "3:\n30,1,2001-01-01"}
    )
    result, out = run(raw, tmp_path)
    assert checked_calls == []
    ratings = read(out, "ratings", RATINGS_SCHEMA)
    assert ratings[["movie_id", "user_id", "rating"]].rows()[-1] == (3, 30, 1)
    assert ratings.height == 3
    lines = {f["name"]: f["lines"] for f in result["files"]}
    assert lines["combined_data_1.txt"] == 4 and lines["combined_data_2.txt"] == 2
    assert result["accepted"] == result["input_lines"] == 3 + 4 + 2


GOOD_ROWS = [(1, 10, 5, dt.date(2005, 1, 2)), (1, 12, 3, dt.date(2005, 1, 4))]
# (lines, 1-based number of the bad line or None, reason): the good rows are GOOD_ROWS.
FAST_PATH_GUARDS = {
    "ragged line": (["1:", "10,5,2005-01-02", "11,4,2005-01-03,7", "12,3,2005-01-04", ""], 3, "fields"),
    "rating 6": (["1:", "10,5,2005-01-02", "11,6,2005-01-03", "12,3,2005-01-04", ""], 3, "rating"),
    "rating not a number": (["1:", "10,5,2005-01-02", "11,x,2005-01-03", "12,3,2005-01-04", ""], 3, "rating"),
    "user id 0": (["1:", "10,5,2005-01-02", "0,4,2005-01-03", "12,3,2005-01-04", ""], 3, "customer id"),
    "bad MovieID as last line, no newline": (
        ["1:", "10,5,2005-01-02", "12,3,2005-01-04", "x2:"],
        4,
        "MovieID",
    ),
    "blank line": (["1:", "10,5,2005-01-02", "", "12,3,2005-01-04", ""], None, None),
    "whitespace line": (["1:", "10,5,2005-01-02", " ", "12,3,2005-01-04", ""], None, None),
    "impossible date": (["1:", "10,5,2005-01-02", "11,4,2005-02-30", "12,3,2005-01-04", ""], 3, "date"),
    "missing date": (["1:", "10,5,2005-01-02", "11,4", "12,3,2005-01-04", ""], 3, "fields"),
}


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("case", sorted(FAST_PATH_GUARDS))
def test_fast_path_guards_fall_back_to_the_checked_scan(
    case: str, crlf: bool, tmp_path: Path, checked_calls: list[str]
) -> None:
    lines, number, reason = FAST_PATH_GUARDS[case]
    content = ("\r\n" if crlf else "\n").join(lines)
    raw = make_raw(tmp_path / "raw", {"combined_data_1.txt": content})
    result, out = run(raw, tmp_path / "skip", SKIP)
    assert checked_calls == ["ratings"]
    assert read(out, "ratings", RATINGS_SCHEMA).rows() == GOOD_ROWS
    rejects = read(out, "rejects", REJECTS_SCHEMA)
    if number is None:  # blank lines are neither input nor rejected
        assert rejects.height == 0 and result["input_lines"] == 3 + 3
        run(raw, tmp_path / "error")
        return
    assert rejects.select("line", "text").rows() == [(number, lines[number - 1])]
    assert reason in rejects["reason"][0]
    assert result["input_lines"] == 3 + 4 and result["accepted"] == 3 + 3
    with pytest.raises(BadInputError, match=reason) as info:
        run(raw, tmp_path / "error")
    assert (info.value.line_number, info.value.line) == (number, lines[number - 1])
