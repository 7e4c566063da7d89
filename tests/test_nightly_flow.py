"""Nights through the Prefect flow: the run history, the failure hook and the shrink guard."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest
from helpers_cli import wmf
from helpers_plots import drawn

from wmf import store
from wmf.layout import LATEST, History
from wmf.pipeline import history
from wmf.pipeline.registry import PIPELINE

pytestmark = pytest.mark.prefect

FAST = ["--factors", "8", "--iterations", "4", "--top-k", "10", "--similar-k", "5"]


def latest(data: Path) -> dict[str, str]:
    """Where every stage's `latest` points."""
    return {stage.name: os.readlink(data / stage.directory / LATEST) for stage in PIPELINE}


def test_nights_are_recorded_and_a_truncated_file_is_refused(
    tiny_raw: Path, tmp_path: Path, prefect_server
) -> None:
    data = tmp_path / "data"
    nights = ["--start", "2005-06-30", "--nights", "2", "--every", "92"]  # 06-30, then 09-30
    code, rows, err = wmf("replay", "--raw", str(tiny_raw), "--data", str(data), *nights, *FAST)
    assert code == 0, err
    lines = [text for text in err.splitlines() if text.startswith("2005-")]  # one per night
    assert lines[0].startswith("2005-06-30  ingest") and " cold" in lines[0]
    assert lines[1].startswith("2005-09-30  ingest") and "Cached" in lines[1] and " warm" in lines[1]
    assert "rbo" in lines[1] and [r["until"] for r in rows] == ["2005-06-30", "2005-09-30"]
    runs = pl.read_parquet(history.runs_path(data))
    assert runs["state"].to_list() == ["Completed", "Completed"]
    assert runs["until"].to_list() == ["2005-06-30", "2005-09-30"]
    assert runs["warm_start"].to_list() == [False, True]
    assert runs["warm_start_from"][1] == runs["train_key"][0]
    assert runs["rbo"][0] is None and 0 < runs["rbo"][1] < 1
    assert runs["ratings"][0] == runs["ratings"][1] and runs["users"][0] < runs["users"][1]
    size, colours = drawn(data / History.DIRECTORY / History.TREND)
    assert size == (800, 500) and colours >= {"C0", "C1", "C2"}  # the metrics, then the drift

    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw, raw)
    lines = (raw / "combined_data_1.txt").read_text().splitlines(keepends=True)
    (raw / "combined_data_1.txt").write_text("".join(lines[: len(lines) // 2]))  # a broken download
    published = latest(data)
    code, _, err = wmf("run", "--raw", str(raw), "--data", str(data), "--until", "2005-09-30", *FAST)
    assert code != 0
    assert "fewer than the" in err and "--max-shrink 0.05" in err
    assert latest(data) == published  # every published table stays as it was
    failed = pl.read_parquet(history.runs_path(data)).row(-1, named=True)
    assert failed["state"] == "Failed" and failed["failed_stage"] == "ingest"
    assert "--max-shrink" in failed["error"]

    code, summary, err = wmf(
        "run", "--raw", str(raw), "--data", str(data), "--until", "2005-09-30", "--max-shrink", "1", *FAST
    )
    assert code == 0, err  # accepted when asked
    assert store.read_manifest(data / "ingest" / "latest")["key"] == summary["stages"]["ingest"]["key"]
