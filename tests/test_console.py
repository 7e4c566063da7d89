"""What the person on call sees: `wmf` run as a user runs it, in a subprocess, with real signals.

One line per failure (the traceback in DATA/logs), checks before Prefect starts, a refused
run that is not a night, no server left behind by `kill -9`, a status a monitoring check can
call, and nothing written outside DATA.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from wmf import store
from wmf.layout import History, Logs, Prefect

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--factors", "4", "--iterations", "2", "--refit-iterations", "1", "--top-k", "5", "--similar-k", "3"]


def _env(home: Path) -> dict[str, str]:
    """A user's environment with its own HOME (where ~/.prefect would be) and no Prefect API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return env | {"HOME": str(home), "PYTHONUNBUFFERED": "1"}


def wmf(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "flows.cli", *args]
    return subprocess.run(command, cwd=ROOT, env=_env(home), capture_output=True, text=True, timeout=timeout)


def start(home: Path, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "flows.cli", *args]
    return subprocess.Popen(
        command, cwd=ROOT, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def failure_lines(stderr: str) -> list[str]:
    """The lines the command ends with on failure (`wmf: ...`), progress bars set aside."""
    return [line for line in stderr.replace("\r", "\n").splitlines() if line.startswith("wmf: ")]


def history(data: Path) -> pl.DataFrame:
    return pl.read_parquet(data / History.DIRECTORY / History.RUNS)


def servers_of(pid: int) -> list[int]:
    """Pids of the temporary Prefect servers `pid` started (Linux /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"flows.server" in cmdline and str(pid).encode() in cmdline:
            found.append(int(proc.name))
    return found


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture(scope="module")
def night(
    tiny_raw: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """(HOME, DATA, the first night's process) of one completed night."""
    root = tmp_path_factory.mktemp("console")
    home, data = root / "home", root / "data"
    home.mkdir()
    done = wmf(home, "run", "--raw", str(tiny_raw), "--data", str(data), *FAST)
    assert done.returncode == 0, done.stderr[-3000:]
    return home, data, done


def test_a_night_ends_with_its_results_and_leaves_nothing_outside_data(night) -> None:
    home, data, done = night
    out = done.stdout
    assert "started cold" in out
    assert "held out" in out and "recall@20" in out and "(popularity " in out
    assert f"analysts' tables: {data / 'exports' / 'latest'}" in out
    log = sorted((data / Logs.DIRECTORY).iterdir())[-1]
    everything = out + done.stderr + log.read_text()
    assert "View at" not in everything and "http://" not in everything  # no link to a page that is not there
    assert done.stderr.startswith(f"wmf run: ingest index train export on {data}")
    assert failure_lines(done.stderr) == []
    assert (data / Prefect.DIRECTORY / Prefect.DATABASE).is_file()
    left = (
        sorted(str(p.relative_to(home)) for p in (home / ".prefect").rglob("*"))
        if (home / ".prefect").exists()
        else []
    )
    assert left == [], f"Prefect wrote {left} outside DATA"
    status = wmf(home, "status", "--data", str(data))
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.splitlines()[0].startswith("last run: Completed ")


def test_a_refused_second_run_is_not_a_night(night, tiny_raw: Path) -> None:
    home, data, _ = night
    rows, logs = history(data).height, sorted((data / Logs.DIRECTORY).iterdir())
    with store.exclusive(data):
        started = time.monotonic()
        refused = wmf(home, "run", "--raw", str(tiny_raw), "--data", str(data), *FAST)
        seconds = time.monotonic() - started
    assert refused.returncode == 3, refused.stderr
    [line] = failure_lines(refused.stderr)
    assert "another wmf run (pid " in line and "--wait" in line
    assert "Traceback" not in refused.stderr
    assert seconds < 5  # no Prefect server booted (~0.3 s here; a booted one takes 4 s or more)
    assert history(data).height == rows
    assert sorted((data / Logs.DIRECTORY).iterdir()) == logs


def test_a_bad_line_fails_in_one_line_with_what_to_do(tiny_raw: Path, tmp_path: Path) -> None:
    raw, data, home = tmp_path / "raw", tmp_path / "data", tmp_path / "home"
    shutil.copytree(tiny_raw, raw)
    home.mkdir()
    path = raw / "combined_data_2.txt"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",2005-02-3O"
    path.write_text("\n".join(lines) + "\n")

    failed = wmf(home, "run", "--raw", str(raw), "--data", str(data), *FAST)
    assert failed.returncode == 2, failed.stderr
    [line] = failure_lines(failed.stderr)
    assert f"ingest failed: {path}:6: date is not YYYY-MM-DD" in line
    assert "--on-bad-lines skip" in line and f"log: {data / Logs.DIRECTORY}" in line
    assert f"rerun `wmf run --raw {raw} --data {data}" in line
    assert "Traceback" not in failed.stderr and "prefect" not in failed.stderr.lower()
    log = Path(line.rsplit("log: ", 1)[1])
    assert "Traceback" in log.read_text() and "BadInputError" in log.read_text()

    as_json = wmf(home, "run", "--raw", str(raw), "--data", str(data), *FAST, "--json")
    assert as_json.returncode == 2
    summary = json.loads(as_json.stdout)
    assert summary["stages"]["ingest"]["error_type"] == "BadInputError"
    assert Path(summary["log"]).is_file()
    assert len(failure_lines(as_json.stderr)) == 1

    verbose = wmf(home, "run", "--raw", str(raw), "--data", str(data), *FAST, "--verbose")
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr

    status = wmf(home, "status", "--data", str(data))
    assert status.returncode == 1
    first = status.stdout.splitlines()[0]
    assert (
        first.startswith("last run: Failed ")
        and ", in ingest: " in first
        and "combined_data_2.txt:6" in first
    )


@pytest.mark.parametrize(
    "case", ["no raw folder", "empty raw folder", "data is a file", "stage without its input", "bad option"]
)
def test_what_can_be_checked_is_checked_before_anything_starts(
    case: str, tiny_raw: Path, tmp_path: Path
) -> None:
    home, data, raw = tmp_path / "home", tmp_path / "data", tiny_raw
    home.mkdir()
    command, expected = "run", ""
    extra: list[str] = []
    if case == "no raw folder":
        raw, expected = tmp_path / "nowhere", "does not exist"
    elif case == "empty raw folder":
        raw, expected = tmp_path / "empty", "no ratings files"
        raw.mkdir()
    elif case == "data is a file":
        data.write_text("")
        data, expected = data / "sub", "is not a folder"
    elif case == "stage without its input":
        command, expected = "train", "run `wmf index` (or `wmf run`) first"
    else:
        extra, expected = ["--holdout-fraction", "1.5"], "--holdout-fraction"
    args = [command, "--data", str(data), *extra] + (["--raw", str(raw)] if command == "run" else [])
    started = time.monotonic()
    refused = wmf(home, *args)
    seconds = time.monotonic() - started
    assert refused.returncode == 2, refused.stderr
    [line] = failure_lines(refused.stderr)
    assert expected in line
    assert seconds < 5  # before Prefect's server boots
    assert not (tmp_path / "data").is_dir()


def test_kill_9_leaves_no_server_and_the_next_night_records_the_crash(tiny_raw: Path, tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    running = data / History.DIRECTORY / History.RUNNING
    cli = start(home, "run", "--raw", str(tiny_raw), "--data", str(data), *FAST)
    assert wait_for(running.exists, 120), cli.communicate()[1][-3000:]
    servers = servers_of(cli.pid)
    assert servers, "no temporary server found"
    cli.send_signal(signal.SIGKILL)
    cli.wait()
    assert wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in servers), 15), (
        "server left running"
    )

    status = wmf(home, "status", "--data", str(data))
    assert status.returncode == 1
    assert status.stdout.startswith("last run: Crashed ") and "killed" in status.stdout.splitlines()[0]

    again = wmf(home, "run", "--raw", str(tiny_raw), "--data", str(data), *FAST)
    assert again.returncode == 0, again.stderr[-3000:]
    assert history(data)["state"].to_list() == ["Crashed", "Completed"]
    assert not running.exists()


def test_sigterm_ends_the_run_as_interrupted(tiny_raw: Path, tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    running = data / History.DIRECTORY / History.RUNNING
    cli = start(home, "run", "--raw", str(tiny_raw), "--data", str(data), *FAST)
    assert wait_for(running.exists, 120)
    servers = servers_of(cli.pid)
    cli.send_signal(signal.SIGTERM)
    _, stderr = cli.communicate(timeout=60)
    assert cli.returncode == 130, stderr[-3000:]
    [line] = failure_lines(stderr)
    assert "interrupted" in line
    assert history(data)["state"].to_list() == ["Interrupted"]
    assert wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in servers), 15)


def test_status_of_a_data_folder_that_does_not_exist_fails(tmp_path: Path) -> None:
    status = wmf(tmp_path, "status", "--data", str(tmp_path / "nowhere"))
    assert status.returncode == 2
    assert failure_lines(status.stderr) == [
        f"wmf: DATA {tmp_path / 'nowhere'} does not exist: no wmf run has written it"
    ]
