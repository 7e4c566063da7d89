"""Prefect's temporary server, booted when a command starts instead of at its first flow run,
and bound to the life of the command.

Without an API to talk to, Prefect starts a temporary local server the moment a flow first
needs one: it imports the server code (~3 s on a 2-core machine), then boots it in a child
process (~4 s), after this process has spent ~4 s on its own imports, one after the other.
Booted first, the child starts on the other core while this process imports and plans, and
the server code is never imported here at all. The child is the server Prefect would start:
its uvicorn app, with the settings Prefect gives its temporary server.

Two things differ, for whoever runs wmf every night:
- the child dies with the command however the command dies, `kill -9` included: it runs
  under `python -m flows.server PARENT_PID ...`, which asks Linux for a signal when its
  parent dies and, everywhere, watches its parent;
- its database lives in DATA (`wmf.layout.Prefect`), not in ~/.prefect, and the run's logs
  go to DATA/logs rather than into it, so a night leaves nothing outside DATA.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from wmf.errors import WmfError
from wmf.layout import Prefect

_SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
_PR_SET_PDEATHSIG = 1
_DATABASE_LIMIT = 256 * 2**20  # bytes; a larger database starts afresh (one migration, ~7 s)


class EarlyServer:
    """One temporary server for this process: `start(data)` at the top of a command, `ready()`
    before its first flow run. Nothing happens where an API is already configured. It stops when
    the process exits, after Prefect has sent its last events (as Prefect's own would)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._settings = contextlib.ExitStack()

    def start(self, data: Path) -> None:
        if os.environ.get("PREFECT_API_URL"):
            return
        if "prefect" not in sys.modules:
            self._spawn(data)  # before importing Prefect's settings (~2 s): they rarely name a server
        import prefect.settings as ps

        settings = ps.get_current_settings()
        if settings.api.url or not settings.server.ephemeral.enabled:
            self.stop()  # a profile names a server, or forbids a temporary one: Prefect decides
            return
        if self.process is None:
            self._spawn(data)
        os.environ["PREFECT_API_URL"] = self.url  # for child processes (Dask workers)
        # No UI to link to, no one to read its logs but the log file (flows.cli.logs), and Prefect's
        # result files (a failed run's error) in DATA, begun afresh each run.
        results = Path(data).resolve() / Prefect.DIRECTORY / Prefect.RESULTS
        shutil.rmtree(results, ignore_errors=True)
        updates = {
            ps.PREFECT_API_URL: self.url,
            ps.PREFECT_UI_URL: "",
            ps.PREFECT_LOGGING_TO_API_ENABLED: False,
            ps.PREFECT_RESULTS_LOCAL_STORAGE_PATH: results,
        }
        self._settings.enter_context(ps.temporary_settings(updates=updates))

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
                    "starting (its errors are in the run's log); start one with `prefect server start` "
                    "and set PREFECT_API_URL"
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

    def _spawn(self, data: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/api"
        spec = importlib.util.find_spec("prefect")  # where it is, without importing it
        app_dir = str(Path(spec.origin).parents[1])
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "flows.server", str(os.getpid()), "-m", "uvicorn", "--app-dir", app_dir,
                "--factory", "prefect.server.api.server:create_app",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on",
            ],
            env={**os.environ, **_SERVER_ENV, **_files_in(data)},
        )  # fmt: skip
        atexit.register(self.stop)  # before Prefect registers its log and event senders: runs after them


def _files_in(data: Path) -> dict[str, str]:
    """The environment that keeps the temporary server's files in DATA: its database, begun
    afresh once it outgrows `_DATABASE_LIMIT` (nothing reads old runs from it: wmf keeps its own
    history), and the record of the blocks registered in that database."""
    folder = Path(data).resolve() / Prefect.DIRECTORY
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / Prefect.DATABASE
    files = [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")]
    if sum(f.stat().st_size for f in files if f.exists()) > _DATABASE_LIMIT:
        for f in [*files, folder / Prefect.MEMO]:
            f.unlink(missing_ok=True)
    return {
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}",
        "PREFECT_SERVER_MEMO_STORE_PATH": str(folder / Prefect.MEMO),
    }


def _run_guarded(parent: int, argv: list[str]) -> None:
    """`python -m flows.server PARENT_PID -m MODULE ARGS...`: run MODULE as `python -m` would,
    ended (SIGTERM, then for good 10 s later) as soon as PARENT_PID is no longer its parent."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        deadline = threading.Timer(10, os._exit, (1,))
        deadline.daemon = True
        deadline.start()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    module, sys.argv = argv[1], [argv[1], *argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


SERVER = EarlyServer()

if __name__ == "__main__":
    _run_guarded(int(sys.argv[1]), sys.argv[2:])
