"""The Prefect flow end to end: stage states, caching, invalidation, failures, the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from flows.cli import main
from wmf import store

pytestmark = pytest.mark.prefect

FAST = ["--iterations", "3", "--factors", "8", "--top-k", "10", "--similar-k", "5"]


def wmf(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    """Run the CLI in-process (against the test harness's server) and parse its --json."""
    capsys.readouterr()
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def states(summary: dict) -> dict[str, str]:
    return {stage: info["state"] for stage, info in summary["stages"].items()}


def test_run_caches_and_invalidates(tiny_raw: Path, tmp_path: Path, prefect_server, capsys) -> None:
    data = tmp_path / "data"
    code, first = wmf("run", "--raw", str(tiny_raw), "--data", str(data), *FAST, capsys=capsys)
    assert code == 0
    assert states(first) == dict.fromkeys(("ingest", "index", "train", "export"), "Completed")
    ratings = first["stages"]["ingest"]["outputs"]["ratings"]
    assert ratings["rows"] == pl.read_parquet(ratings["path"]).height > 0
    recs = first["stages"]["export"]["outputs"]["recommendations"]
    n_users = first["stages"]["index"]["outputs"]["users"]["rows"]
    assert pl.read_parquet(recs["path"])["user_id"].n_unique() == n_users

    code, again = wmf("run", "--raw", str(tiny_raw), "--data", str(data), *FAST, capsys=capsys)
    assert code == 0
    assert set(states(again).values()) == {"Cached"}

    # A changed parameter re-runs its stage and those after it, not those before.
    code, changed = wmf(
        "run", "--raw", str(tiny_raw), "--data", str(data), *FAST, "--min-rating", "3", capsys=capsys
    )
    assert code == 0
    assert states(changed) == {
        "ingest": "Cached",
        "index": "Completed",
        "train": "Completed",
        "export": "Completed",
    }

    # A cached stage whose output was deleted runs again instead of pointing at nothing.
    shutil.rmtree(changed["stages"]["index"]["directory"])
    code, rebuilt = wmf(
        "run", "--raw", str(tiny_raw), "--data", str(data), *FAST, "--min-rating", "3", capsys=capsys
    )
    assert code == 0
    assert states(rebuilt)["index"] == "Completed"
    assert Path(rebuilt["stages"]["index"]["outputs"]["users"]["path"]).is_file()


def test_changed_raw_file_reruns_ingest(tiny_raw: Path, tmp_path: Path, prefect_server, capsys) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw, raw)
    data = tmp_path / "data"
    code, first = wmf("ingest", "--raw", str(raw), "--data", str(data), capsys=capsys)
    assert code == 0
    with (raw / "combined_data_4.txt").open("a") as f:
        f.write("17770:\n2649429,5,2005-12-31\n")
    code, second = wmf("ingest", "--raw", str(raw), "--data", str(data), capsys=capsys)
    assert code == 0 and states(second) == {"ingest": "Completed"}
    before = first["stages"]["ingest"]["outputs"]["ratings"]["rows"]
    after = second["stages"]["ingest"]["outputs"]["ratings"]["rows"]
    assert after == before + 1
    assert after == pl.read_parquet(store.latest(data / "ingest") / "ratings.parquet").height


def test_bad_input_fails_and_keeps_published_outputs(
    tiny_raw: Path, tmp_path: Path, prefect_server, capsys
) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw, raw)
    data = tmp_path / "data"
    assert wmf("ingest", "--raw", str(raw), "--data", str(data), capsys=capsys)[0] == 0
    published = store.latest(data / "ingest")
    before = store.read_manifest(published)

    lines = (raw / "combined_data_2.txt").read_text().splitlines(keepends=True)
    lines.insert(3, "123,7,2005-01-01\n")
    (raw / "combined_data_2.txt").write_text("".join(lines))
    code, summary = wmf("ingest", "--raw", str(raw), "--data", str(data), capsys=capsys)
    assert code != 0
    error = summary["stages"]["ingest"]["error"]
    assert "combined_data_2.txt" in error and ":4" in error and "123,7,2005-01-01" in error
    assert store.latest(data / "ingest") == published
    assert store.read_manifest(published) == before
    assert not [p for p in (data / "ingest").iterdir() if p.name.startswith(".tmp")]


def test_stage_without_upstream_says_what_to_run(tmp_path: Path, capsys) -> None:
    assert main(["train", "--data", str(tmp_path / "empty")]) == 2
    assert "run `wmf index` (or `wmf run`) first" in capsys.readouterr().err


def test_real_samples_through_the_flow(sample_dir: Path, tmp_path: Path, prefect_server, capsys) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(sample_dir / "combined_data_1.movies_1-20.txt", raw / "combined_data_1.txt")
    shutil.copy(sample_dir / "movie_titles.csv", raw / "movie_titles.csv")
    data = tmp_path / "data"
    code, summary = wmf("ingest", "--raw", str(raw), "--data", str(data), capsys=capsys)
    assert code == 0
    assert summary["stages"]["ingest"]["outputs"]["ratings"]["rows"] == 42_813
    assert summary["stages"]["ingest"]["outputs"]["movies"]["rows"] == 17_770
    code, summary = wmf("index", "--data", str(data), "--holdout", "none", capsys=capsys)
    assert code == 0
    assert summary["stages"]["index"]["outputs"]["users"]["rows"] == 38_152
    assert summary["stages"]["index"]["outputs"]["movies"]["rows"] == 20


def test_console_script_exit_codes(tiny_raw: Path, tmp_path: Path) -> None:
    """The installed entry point with its own temporary Prefect server."""
    exe = Path(sys.executable).with_name("wmf")
    data = tmp_path / "data"
    done = subprocess.run(
        [str(exe), "ingest", "--raw", str(tiny_raw), "--data", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stages"]["ingest"]["state"] == "Completed"
    missing = subprocess.run(
        [str(exe), "ingest", "--raw", str(tmp_path / "nowhere"), "--data", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode != 0
    assert "nowhere" in missing.stderr
