"""`wmf tune` as users run it: the cached stages, the search as Prefect tasks, artifacts,
caching, Dask, and training with the published best options."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from helpers_cli import wmf

from flows.cli import main
from wmf import configfile

pytestmark = pytest.mark.prefect

SEARCH = ["--trials", "3", "--trial-iterations", "4", "--factor-choices", "8,16", "--startup-trials", "2"]


def tune(raw: Path, data: Path, *extra: str) -> tuple[int, dict, str]:
    return wmf("tune", "--raw", str(raw), "--data", str(data), *SEARCH, *extra)


def states(summary: dict) -> dict[str, str]:
    return {stage: info["state"] for stage, info in summary["stages"].items()}


def test_tune_publishes_artifacts_is_cached_and_its_options_train(
    tiny_raw: Path, tmp_path: Path, prefect_server
):
    from prefect.artifacts import Artifact

    data = tmp_path / "data"
    code, summary, err = tune(tiny_raw, data)
    assert code == 0, err
    assert states(summary) == {"ingest": "Completed", "index": "Completed", "tune": "Completed"}
    best_toml = Path(summary["stages"]["tune"]["best_toml"])
    assert best_toml == data / "tune" / "latest" / "best.toml"
    best = configfile.load(best_toml)["train"]
    assert best == summary["stages"]["tune"]["best"]["train"] and best["factors"] in (8, 16)
    trials = pl.read_parquet(summary["stages"]["tune"]["outputs"]["trials"]["path"])
    assert trials.height == 3 and set(trials["factors"]) <= {8, 16}

    markdown = Artifact.get("wmf-tune")
    assert markdown is not None and "data:image/png;base64," in markdown.data and "[train]" in markdown.data
    table = Artifact.get("wmf-tune-trials")
    assert table is not None and len(json.loads(table.data)) == 3

    code, again, err = tune(tiny_raw, data)
    assert code == 0, err
    assert set(states(again).values()) == {"Cached"}
    code, report, _ = wmf("status", "--data", str(data), "--verify")
    assert (
        code == 0
        and report["stages"]["tune"]["damaged"] == []
        and report["stages"]["tune"]["current"] is None
    )
    assert (
        report["stages"]["tune"]["outputs"]["trials"]["rows"] == 3 and "compare" not in report["stages"]
    )  # not run
    code, forced, err = tune(tiny_raw, data, "--force")  # searches again, from a new study
    assert code == 0, err
    assert states(forced) == {"ingest": "Cached", "index": "Cached", "tune": "Completed"}
    searched = pl.read_parquet(forced["stages"]["tune"]["outputs"]["trials"]["path"])
    assert searched.height == 3 and searched["seconds"].to_list() != trials["seconds"].to_list()

    code, run, err = wmf(
        "run", "--raw", str(tiny_raw), "--data", str(data), "--config", str(best_toml), "--top-k", "5"
    )
    assert code == 0, err
    trained = json.loads((Path(run["stages"]["train"]["directory"]) / "manifest.json").read_text())
    assert {k: trained["config"][k] for k in best} == best


def test_changed_search_options_search_again(tiny_raw: Path, tmp_path: Path, prefect_server):
    data = tmp_path / "data"
    assert tune(tiny_raw, data)[0] == 0
    code, summary, err = tune(tiny_raw, data, "--metric", "recall@20")
    assert code == 0, err
    assert states(summary) == {"ingest": "Cached", "index": "Cached", "tune": "Completed"}
    assert summary["stages"]["tune"]["metric"] == "recall@20"


def test_bad_search_options_fail_before_anything_runs(tiny_raw: Path, tmp_path: Path, capsys):
    data = tmp_path / "data"
    assert main(["tune", "--raw", str(tiny_raw), "--data", str(data), *SEARCH, "--metric", "auc"]) == 2
    assert capsys.readouterr().err.startswith("wmf: --metric 'auc': expected NAME@K")
    assert main(["tune", "--raw", str(tiny_raw), "--data", str(data), "--metric", "ndcg@30"]) == 2
    assert "a cut-off the evaluation computes" in capsys.readouterr().err  # nor --eval-k's
    assert not data.exists()


def test_trials_run_in_parallel_on_dask(tiny_raw: Path, tmp_path: Path, prefect_server, monkeypatch):
    from prefect.settings import get_current_settings

    monkeypatch.setenv("PREFECT_API_URL", str(get_current_settings().api.url))
    code, summary, err = tune(tiny_raw, tmp_path / "data", "--task-runner", "dask", "--dask-workers", "2")
    assert code == 0, err
    trials = pl.read_parquet(summary["stages"]["tune"]["outputs"]["trials"]["path"])
    assert trials.height == 3 and set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    # two workers, two trials at a time: the first two trials' task runs overlap in time
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="trial-")))
    spans = sorted((r.start_time, r.end_time) for r in runs if r.start_time and r.end_time)[-3:]
    assert len(spans) == 3 and spans[1][0] < spans[0][1]
