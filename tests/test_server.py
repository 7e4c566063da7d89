"""The temporary Prefect server a bare CLI command boots at its start (flows.server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.server import EarlyServer

ROOT = Path(__file__).resolve().parents[1]
APP = "prefect.server.api.server:create_app"


def _servers_of(prefect_home: Path) -> list[int]:
    """Pids of the Prefect servers running with this PREFECT_HOME (Linux /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if APP in (proc / "cmdline").read_text() and str(prefect_home) in (proc / "environ").read_text():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.prefect
def test_a_bare_command_boots_its_own_server_and_stops_it(tiny_raw: Path, tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    cmd = [sys.executable, "-m", "flows.cli", "ingest", "--raw", str(tiny_raw), "--data", str(tmp_path / "d")]
    proc = subprocess.run([*cmd, "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["stages"]["ingest"]["state"] == "Completed"
    log = json.loads(proc.stdout)["log"]
    everything = proc.stderr + Path(log).read_text()
    assert "Starting temporary server" not in everything  # Prefect did not start a second one
    assert "Error" not in everything  # its events were sent before it stopped
    assert (tmp_path / "d" / ".prefect" / "server.db").is_file()  # the run went to the server in DATA
    assert not (home / "prefect.db").exists()
    assert _servers_of(home) == []


def test_nothing_is_started_where_an_api_is_configured(prefect_server: None, tmp_path: Path) -> None:
    from prefect.settings import get_current_settings

    configured = get_current_settings().api.url
    server = EarlyServer()
    server.start(tmp_path)
    server.ready()
    assert server.process is None
    assert get_current_settings().api.url == configured
    server.stop()
