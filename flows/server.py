"""Prefect's temporary server, booted when a command starts instead of at its first flow run.

Without an API to talk to, Prefect starts a temporary local server the moment a flow first
needs one: it imports the server code (~3 s on a 2-core machine), then boots it in a child
process (~4 s), after this process has spent ~4 s on its own imports, one after the other.
Booted first, the child starts on the other core while this process imports and plans, and
the server code is never imported here at all. The child is the server Prefect would start:
its uvicorn app, with the settings Prefect gives its temporary server.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from wmf.errors import WmfError

_SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}


class EarlyServer:
    """One temporary server for this process: `start()` at the top of a command, `ready()` before
    its first flow run. Nothing happens where an API is already configured. It stops when the
    process exits, after Prefect has sent its last logs and events (as Prefect's own would)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._settings = contextlib.ExitStack()

    def start(self) -> None:
        if os.environ.get("PREFECT_API_URL"):
            return
        if "prefect" not in sys.modules:
            self._spawn()  # before importing Prefect's settings (~2 s): they rarely name a server
        from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

        settings = get_current_settings()
        if settings.api.url or not settings.server.ephemeral.enabled:
            self.stop()  # a profile names a server, or forbids a temporary one: Prefect decides
            return
        if self.process is None:
            self._spawn()
        os.environ["PREFECT_API_URL"] = self.url  # for child processes (Dask workers)
        self._settings.enter_context(temporary_settings(updates={PREFECT_API_URL: self.url}))

    def ready(self) -> None:
        """Wait until the server answers (it has usually booted during the imports)."""
        if self.process is None:
            return
        import urllib.request

        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        deadline = time.monotonic() + PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WmfError(
                    f"the temporary Prefect server exited with code {self.process.returncode} while "
                    "starting; start one with `prefect server start` and set PREFECT_API_URL"
                )
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.url}/health", timeout=1):
                return
            time.sleep(0.05)
        raise WmfError(f"the temporary Prefect server at {self.url} did not answer in time")

    def stop(self) -> None:
        self._settings.close()
        if self.process is None:
            return
        if os.environ.get("PREFECT_API_URL") == self.url:
            del os.environ["PREFECT_API_URL"]
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _spawn(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/api"
        spec = importlib.util.find_spec("prefect")  # where it is, without importing it
        app_dir = str(Path(spec.origin).parents[1])
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "--app-dir", app_dir,
                "--factory", "prefect.server.api.server:create_app",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on",
            ],
            env={**os.environ, **_SERVER_ENV},
        )  # fmt: skip
        atexit.register(self.stop)  # before Prefect registers its log and event senders: runs after them


SERVER = EarlyServer()
