"""Operations: rerun after a failure, forced reruns, SIGKILL and resume, the DATA lock,
retries, and `wmf status`. Faults are injected in-process by monkeypatching a stage's core."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers_cli import wmf
from helpers_plots import drawn
from polars.testing import assert_frame_equal

from flows.cli import main
from wmf import store
from wmf.errors import BadInputError
from wmf.fingerprints import digest
from wmf.layout import LATEST, Export
from wmf.pipeline.registry import PIPELINE_NAMES, STAGES

pytestmark = pytest.mark.prefect

ITERATIONS = 4
FAST = ["--iterations", str(ITERATIONS), "--factors", "8", "--top-k", "10", "--similar-k", "5"]
# States when training and export rerun on top of cached ingest and index.
TRAIN_AND_EXPORT_RERUN = {"ingest": "Cached", "index": "Cached", "train": "Completed", "export": "Completed"}


def run(raw: Path, data: Path, *extra: str) -> tuple[int, dict, str]:
    return wmf("run", "--raw", str(raw), "--data", str(data), *FAST, *extra)


def states(summary: dict) -> dict[str, str]:
    return {stage: info["state"] for stage, info in summary["stages"].items()}


def assert_nothing_half_built(data: Path) -> None:
    """Every output directory is complete (manifest) and no temporary is left."""
    for stage in STAGES.values():
        root = data / stage.directory
        if not root.is_dir():
            continue
        assert not list(root.glob(".tmp-*")), f"stale temporaries in {root}"
        for p in root.iterdir():
            if p.is_dir() and not p.name.startswith("."):
                assert store.is_complete(p), f"{p} looks like an output but has no manifest"


def inject(monkeypatch: pytest.MonkeyPatch, stage: str, fault: BaseException, times: int = 1) -> list[int]:
    """Make the stage's build write a partial file and raise `fault` on its first `times` calls."""
    module = importlib.import_module(STAGES[stage].build)
    real = module.build
    calls: list[int] = []

    def faulty(ctx: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            (ctx.out / "partial.parquet").write_bytes(b"PAR1 half a table")
            raise fault
        return real(ctx)

    monkeypatch.setattr(module, "build", faulty)
    return calls


@pytest.fixture(scope="module")
def built(tiny_raw: Path, tmp_path_factory: pytest.TempPathFactory, prefect_server) -> tuple[Path, dict]:
    """One uninterrupted run: the reference tables, and published outputs for read-mostly tests."""
    data = tmp_path_factory.mktemp("built") / "data"
    code, summary, err = run(tiny_raw, data)
    assert code == 0, err
    return data, summary


@pytest.mark.parametrize("failing", PIPELINE_NAMES)
def test_rerun_after_a_failure_starts_at_the_failed_stage(
    failing: str, tiny_raw: Path, tmp_path: Path, built, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    with monkeypatch.context() as m:
        inject(m, failing, RuntimeError(f"injected fault in {failing}"))
        code, summary, err = run(tiny_raw, data)
    assert code == 1
    position = PIPELINE_NAMES.index(failing)
    assert states(summary) == {
        **dict.fromkeys(PIPELINE_NAMES[:position], "Completed"),
        failing: "Failed",
    }
    assert f"injected fault in {failing}" in summary["stages"][failing]["error"]
    assert f"{failing} failed" in err
    assert not (data / STAGES[failing].directory / LATEST).exists()
    assert_nothing_half_built(data)

    code, summary, err = run(tiny_raw, data)
    assert code == 0, err
    assert states(summary) == {
        **dict.fromkeys(PIPELINE_NAMES[:position], "Cached"),
        **dict.fromkeys(PIPELINE_NAMES[position:], "Completed"),
    }
    recs = pl.read_parquet(summary["stages"]["export"]["outputs"]["recommendations"]["path"])
    reference = pl.read_parquet(built[1]["stages"]["export"]["outputs"]["recommendations"]["path"])
    assert_frame_equal(recs, reference)


def test_from_and_only_force_reruns_and_stage_commands(tiny_raw: Path, built) -> None:
    data, _ = built
    code, summary, err = run(tiny_raw, data, "--from", "train")
    assert code == 0, err
    assert states(summary) == TRAIN_AND_EXPORT_RERUN
    code, summary, err = run(tiny_raw, data, "--only", "index")
    assert code == 0, err
    assert states(summary) == {"index": "Completed"}

    # A single stage reads the published outputs of the stages before it.
    code, summary, err = wmf("train", "--data", str(data), *FAST[:4])
    assert code == 0, err
    assert states(summary) == {"train": "Cached"}
    code, summary, err = wmf("export", "--data", str(data), "--top-k", "3", "--similar-k", "5")
    assert code == 0, err
    assert states(summary) == {"export": "Completed"}
    recs = pl.read_parquet(summary["stages"]["export"]["outputs"]["recommendations"]["path"])
    assert recs.group_by("user_id").len()["len"].max() == 3
    # Put the published export back as the module's other tests expect it.
    assert run(tiny_raw, data)[0] == 0


def test_status_reports_outputs_and_currency(tiny_raw: Path, tmp_path: Path, built) -> None:
    data, summary = built
    code, report, _ = wmf("status", "--data", str(data), "--raw", str(tiny_raw), *FAST)
    assert code == 0
    assert {stage: report["stages"][stage]["current"] for stage in PIPELINE_NAMES} == dict.fromkeys(
        PIPELINE_NAMES, True
    )
    ratings = report["stages"]["ingest"]["outputs"]["ratings"]
    assert ratings["rows"] == summary["stages"]["ingest"]["outputs"]["ratings"]["rows"]
    assert ratings["fingerprint"] == digest(Path(ratings["path"]))
    assert report["stages"]["train"]["config"]["factors"] == 8 and report["stages"]["train"]["created_at"]

    # Other model settings: train is stale, with the reason; the export after it will run only if
    # the new model differs from the published one, which cannot be known before training.
    code, report, _ = wmf("status", "--data", str(data), "--raw", str(tiny_raw), *FAST, "--factors", "4")
    assert [report["stages"][s]["current"] for s in PIPELINE_NAMES] == [True, True, False, None]
    assert (
        "factors" in report["stages"]["train"]["reason"]
        and "earlier stage" in report["stages"]["export"]["reason"]
    )

    # Changed raw files make ingest stale, and everything after it.
    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw, raw)
    with (raw / "combined_data_4.txt").open("a") as f:
        f.write("17770:\n2649429,5,2005-12-31\n")
    code, report, _ = wmf("status", "--data", str(data), "--raw", str(raw), *FAST)
    assert report["stages"]["ingest"]["current"] is False
    assert not any(report["stages"][s]["current"] for s in PIPELINE_NAMES)

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["status", "--data", str(data), "--raw", str(tiny_raw), *FAST]) == 0
    lines = text.getvalue().splitlines()
    assert lines[0].startswith("last run: Completed ") and lines[1].startswith("ingest  current")
    assert any("ratings" in line and f"{ratings['rows']:,} rows" in line for line in lines)
    (tmp_path / "empty").mkdir()
    code, report, _ = wmf("status", "--data", str(tmp_path / "empty"))
    assert code == 0 and report["last_run"] is None
    assert report["stages"]["train"] == {"published": False, "current": False}


def test_a_damaged_published_table_is_named_and_rebuilt(
    tiny_raw: Path, tmp_path: Path, built, caplog: pytest.LogCaptureFixture
) -> None:
    """16 bytes XOR-ed at four places of the published ratings, its file date kept: `wmf status
    --verify` names the file, and `wmf run --from index` rebuilds the ingest instead of failing."""
    data = tmp_path / "data"
    shutil.copytree(built[0], data, symlinks=True)
    code, summary, err = run(tiny_raw, data)  # a copy: its files are hashed once, then trusted
    assert code == 0 and set(states(summary).values()) == {"Cached"}, err
    ratings = data / "ingest" / "latest" / "ratings.parquet"
    st = ratings.stat()
    with ratings.open("r+b") as f:
        for at in range(1, 5):
            f.seek(at * st.st_size // 5)
            chunk = f.read(16)
            f.seek(at * st.st_size // 5)
            f.write(bytes(b ^ 0x5A for b in chunk))
    os.utime(ratings, ns=(st.st_atime_ns, st.st_mtime_ns))

    code, report, _ = wmf("status", "--data", str(data), "--verify")
    assert code == 1
    assert report["failing"] and report["last_run"]["state"] == "Completed"
    assert (
        report["stages"]["ingest"]["damaged"] == ["ratings.parquet"]
        and report["stages"]["index"]["damaged"] == []
    )
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        main(["status", "--data", str(data), "--verify"])
    assert "DAMAGED: ratings.parquet" in text.getvalue() and "verified: every file" in text.getvalue()

    code, summary, err = run(tiny_raw, data, "--from", "index")
    assert code == 0, err
    assert states(summary) == dict.fromkeys(PIPELINE_NAMES, "Completed")  # ingest rebuilt, then the rest
    assert "ratings.parquet: not the bytes the ingest stage wrote" in caplog.text
    code, report, _ = wmf("status", "--data", str(data), "--verify")
    assert code == 0 and not any(entry["damaged"] for entry in report["stages"].values())


def test_a_damaged_warm_start_is_left_out_by_the_next_night(
    tiny_raw: Path, tmp_path: Path, prefect_server, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    code, first, err = run(tiny_raw, data, "--until", "2005-06-30")
    assert code == 0, err
    model = Path(first["stages"]["train"]["directory"]) / "model.safetensors"
    st = model.stat()
    with model.open("r+b") as f:  # bytes flipped past the header, the file's date kept
        f.seek(st.st_size // 2)
        chunk = f.read(16)
        f.seek(st.st_size // 2)
        f.write(bytes(b ^ 0x5A for b in chunk))
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, second, err = run(tiny_raw, data, "--until", "2005-09-30")
    assert code == 0, err
    assert second["stages"]["train"]["state"] == "Completed" and second["stages"]["train"]["start"] == "cold"
    assert "model.safetensors" in caplog.text and "goes without its warm_start" in caplog.text


def test_a_second_run_waits_with_wait(tiny_raw: Path, built) -> None:
    """Another process holds DATA for a second: `--wait` queues behind it (the refusal without
    it: tests/test_console.py)."""
    data, _ = built
    hold = (
        "import sys, time; from wmf import store\n"
        "with store.exclusive(sys.argv[1]):\n print(1, flush=True); time.sleep(1.5)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(data)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "1"
    started = time.monotonic()
    code, summary, err = wmf("export", "--data", str(data), *FAST[4:], "--wait")
    holder.wait()
    assert code == 0, err
    assert time.monotonic() - started >= 1.0
    assert "waiting for the run holding" in err and "(pid " in err
    assert states(summary) == {"export": "Cached"}


def test_transient_errors_are_retried_and_bad_input_is_not(
    tiny_raw: Path, tmp_path: Path, prefect_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_retry = ["--retries", "2", "--retry-delay-seconds", "0"]
    calls = inject(monkeypatch, "ingest", OSError("flaky disk"))
    code, summary, err = wmf("ingest", "--raw", str(tiny_raw), "--data", str(tmp_path / "a"), *fast_retry)
    assert code == 0, err
    assert states(summary) == {"ingest": "Completed"} and len(calls) == 2

    bad = BadInputError(tiny_raw / "combined_data_1.txt", 4, "123,7", "no movie id line before it")
    for fault, data, exit_code in ((ValueError("a bug"), "b", 1), (bad, "c", 2)):
        calls = inject(monkeypatch, "ingest", fault, times=99)
        code, summary, err = wmf(
            "ingest", "--raw", str(tiny_raw), "--data", str(tmp_path / data), *fast_retry
        )
        assert code == exit_code
        assert states(summary) == {"ingest": "Failed"} and len(calls) == 1
        assert str(fault) in summary["stages"]["ingest"]["error"]
        assert_nothing_half_built(tmp_path / data)


def _checkpoint_iteration(data: Path) -> int:
    from safetensors import safe_open

    for path in (data / "train" / ".checkpoints").glob("*/checkpoint.safetensors"):
        with contextlib.suppress(Exception), safe_open(path, framework="pt") as f:
            return int(f.metadata()["iteration"])
    return 0


def test_sigkill_during_training_resumes_from_the_checkpoint(
    tiny_raw: Path, tmp_path: Path, built, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect.settings import get_current_settings

    data = tmp_path / "data"
    env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url)}
    cmd = [sys.executable, "-m", "flows.cli", "run", "--raw", str(tiny_raw), "--data", str(data), *FAST]
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while _checkpoint_iteration(data) < 1:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "training never checkpointed"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    killed_at = _checkpoint_iteration(data)
    assert 1 <= killed_at < ITERATIONS, "the run was not killed in the middle of training"
    assert not (data / "train" / LATEST).exists()
    # What a kill during a checkpoint write of another training (other settings) leaves.
    half_written = data / "train" / ".checkpoints" / "0123456789abcdef" / ".checkpoint.safetensors.1.tmp"
    half_written.parent.mkdir()
    half_written.write_bytes(b"half")
    for stage in ("train", "exports"):
        root = data / stage
        outputs = (
            [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.exists() else []
        )
        assert all(store.is_complete(p) for p in outputs)

    code, summary, err = run(tiny_raw, data)
    assert code == 0, err
    assert states(summary) == TRAIN_AND_EXPORT_RERUN
    train_dir = Path(summary["stages"]["train"]["directory"])
    assert store.read_manifest(train_dir)["summary"]["resumed_from_iteration"] == killed_at
    assert f"resuming training from its checkpoint after iteration {killed_at}" in caplog.text
    assert "left by an interrupted run" in caplog.text
    assert f"iteration {ITERATIONS}/{ITERATIONS} loss" in caplog.text  # per-iteration progress
    assert f"iteration {killed_at}/{ITERATIONS} loss" not in caplog.text  # not redone
    assert_nothing_half_built(data)
    assert not half_written.exists()

    reference = built[1]["stages"]
    history = store.read_json(train_dir / "history.json")
    reference_history = store.read_json(Path(reference["train"]["directory"]) / "history.json")
    assert [r["loss"] for r in history] == pytest.approx([r["loss"] for r in reference_history], rel=1e-5)
    for table in ("recommendations", "user_embeddings"):
        got = pl.read_parquet(summary["stages"]["export"]["outputs"][table]["path"])
        want = pl.read_parquet(reference["export"]["outputs"][table]["path"])
        assert_frame_equal(got, want, rel_tol=1e-4, abs_tol=1e-6)


def test_run_publishes_summary_metrics_progress_and_loss_curve(tiny_raw: Path, built) -> None:
    from prefect.artifacts import Artifact

    data, _ = built
    code, summary, err = run(tiny_raw, data)
    assert code == 0, err
    export = summary["stages"]["export"]
    curve = Path(export["directory"]) / Export.LOSS_CURVE
    size, colours = drawn(curve)
    assert size == (700, 350) and colours >= {"C0", "C1"}  # the training split's loss, then the refit's

    markdown = Artifact.get("wmf-run-summary")
    assert markdown is not None and markdown.type == "markdown"
    assert export["outputs"]["recommendations"]["path"] in markdown.data
    assert f"{export['outputs']['recommendations']['rows']:,}" in markdown.data
    assert str(curve) in markdown.data

    table = Artifact.get("wmf-metrics")
    assert table is not None and table.type == "table"
    rows = {row["metric"]: row for row in json.loads(table.data)}
    metrics = store.read_json(Path(export["directory"]) / "metrics.json")
    assert rows["recall@20"]["model"] == pytest.approx(metrics["model"]["recall@20"], abs=1e-5)
    assert rows["recall@20"]["popularity"] == pytest.approx(metrics["popularity"]["recall@20"], abs=1e-5)

    progress = Artifact.get("wmf-progress")
    assert progress is not None and progress.type == "progress" and float(progress.data) == 100.0


def test_dask_task_runner_gives_the_same_tables(
    tiny_raw: Path, tmp_path: Path, built, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import get_current_settings

    # Dask workers are processes: they report to the test server through the environment.
    monkeypatch.setenv("PREFECT_API_URL", str(get_current_settings().api.url))
    data = tmp_path / "data"
    code, summary, err = run(tiny_raw, data, "--task-runner", "dask", "--dask-workers", "2")
    assert code == 0, err
    assert set(states(summary).values()) == {"Completed"}
    assert store.read_manifest(Path(summary["stages"]["ingest"]["directory"]))["summary"]["parts"] == 4
    reference = built[1]["stages"]
    for stage, table in (("ingest", "ratings"), ("index", "users"), ("export", "recommendations")):
        got = pl.read_parquet(summary["stages"][stage]["outputs"][table]["path"])
        want = pl.read_parquet(reference[stage]["outputs"][table]["path"])
        assert_frame_equal(got, want)


@pytest.mark.parametrize("on_bad_lines", ["skip", "error"])
def test_partitioned_ingest_equals_ingest(tiny_raw: Path, tmp_path: Path, on_bad_lines: str) -> None:
    from wmf.config import IngestConfig
    from wmf.stages.ingest.parse import ingest
    from wmf.stages.ingest.partitioned import ingest_partitioned

    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw, raw)
    lines = (raw / "combined_data_3.txt").read_text().splitlines(keepends=True)
    lines.insert(4, "123,7,2005-01-01\n")
    (raw / "combined_data_3.txt").write_text("".join(lines))
    config = IngestConfig(on_bad_lines=on_bad_lines)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    whole.mkdir(), parts.mkdir()
    if on_bad_lines == "error":
        with pytest.raises(BadInputError) as caught:
            ingest_partitioned(raw, parts, config, map)
        assert caught.value.path == str((raw / "combined_data_3.txt").resolve())
        assert caught.value.line_number == 5
        return
    expected = ingest(raw, whole, config, progress=False)
    got = ingest_partitioned(raw, parts, config, map)
    assert got.pop("parts") == 4
    assert got == expected
    assert sorted(p.name for p in parts.iterdir()) == sorted(p.name for p in whole.iterdir())
    for table in whole.glob("*.parquet"):
        assert_frame_equal(pl.read_parquet(parts / table.name), pl.read_parquet(table))
    assert store.read_json(parts / "quality.json") == store.read_json(whole / "quality.json")
    assert pl.read_parquet(parts / "rejects.parquet").select("file", "line").row(0) == (
        "combined_data_3.txt",
        5,
    )
