"""The private Prefect pieces flows/server.py relies on, checked against the installed Prefect.

flows/server.py boots Prefect's temporary server itself, the way Prefect does: it spawns
`python -m uvicorn --factory prefect.server.api.server:create_app` with the environment Prefect
gives its temporary server, then points this process at it through Prefect's settings. None of
that is public API, so an upgrade of Prefect (pinned in scripts/constraints.txt) can remove or
change it without notice. These tests fail naming what changed and what to fix in
flows/server.py. They read Prefect's server source instead of importing it (~3 s), and start
no server.
"""

from __future__ import annotations

import ast
import atexit
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import flows.server
from flows.server import EarlyServer

PREFECT = importlib.metadata.version("prefect")
PREFECT_DIR = Path(importlib.util.find_spec("prefect").origin).parent
SERVER_PY = PREFECT_DIR / "server" / "api" / "server.py"
CLIENT_PY = PREFECT_DIR / "client" / "orchestration" / "__init__.py"
FACTORY = "prefect.server.api.server:create_app"
FIX = f"flows/server.py relies on it: update it for Prefect {PREFECT}"


def _tree(path: Path) -> ast.Module:
    assert path.is_file(), f"Prefect {PREFECT} has no {path.relative_to(PREFECT_DIR.parent)}; {FIX}"
    return ast.parse(path.read_text(encoding="utf-8"))


def _function(node: ast.AST, name: str, where: str) -> ast.FunctionDef:
    found = [n for n in ast.iter_child_nodes(node) if isinstance(n, ast.FunctionDef) and n.name == name]
    assert found, f"Prefect {PREFECT} has no {where}.{name}(); {FIX}"
    return found[-1]  # the implementation, after any @overload


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _prefects_server_command() -> tuple[list[str | None], dict[str, str]]:
    """The uvicorn command line (None where it is computed) and the fixed environment with which
    Prefect's SubprocessASGIServer starts its temporary server, read from Prefect's source."""
    classes = [
        n for n in _tree(SERVER_PY).body if isinstance(n, ast.ClassDef) and n.name == "SubprocessASGIServer"
    ]
    assert classes, (
        f"Prefect {PREFECT} has no prefect.server.api.server.SubprocessASGIServer, the temporary server "
        f"flows/server.py starts the same way; {FIX} (find what prefect.client.orchestration.get_client "
        "now starts when no API URL is set, and start that)"
    )
    run = _function(classes[0], "_run_uvicorn_command", "SubprocessASGIServer")
    popen = [
        c
        for c in ast.walk(run)
        if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr == "Popen"
    ]
    assert len(popen) == 1, f"Prefect {PREFECT}'s SubprocessASGIServer no longer runs one Popen; {FIX}"
    args = next((k.value for k in popen[0].keywords if k.arg == "args"), None) or popen[0].args[0]
    assert isinstance(args, ast.List), f"Prefect {PREFECT} builds its server command differently; {FIX}"
    command = [a.value if isinstance(a, ast.Constant) else None for a in args.elts]
    env: dict[str, str] = {}
    for d in ast.walk(run):  # the literal {"PREFECT_UI_ENABLED": "0", ...} merged over os.environ
        if isinstance(d, ast.Dict) and d.keys and all(isinstance(k, ast.Constant) for k in d.keys):
            env |= ast.literal_eval(d)
    return command, env


def _our_server_command(monkeypatch: pytest.MonkeyPatch, data: Path) -> tuple[list[str], dict[str, str]]:
    """What EarlyServer._spawn passes to Popen (nothing is started), as the command `python -m
    flows.server PID` runs under its guard: `python -m uvicorn ...`."""
    seen: dict[str, Any] = {}

    def popen(args: list[str], env: dict[str, str], **kwargs: Any) -> object:
        seen.update(args=args, env=env, kwargs=kwargs)
        return object()

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(atexit, "register", lambda *a, **k: None)
    EarlyServer()._spawn(data)
    assert not seen["kwargs"], "flows/server.py passes Popen more than args and env: update this test"
    args = seen["args"]
    assert args[:4] == [sys.executable, "-m", "flows.server", str(os.getpid())]
    return [sys.executable, *args[4:]], seen["env"]


def test_the_server_is_started_as_prefect_starts_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prefects, prefects_env = _prefects_server_command()
    ours, our_env = _our_server_command(monkeypatch, tmp_path)
    assert len(ours) == len(prefects) and all(
        p is None or p == o for p, o in zip(prefects, ours, strict=True)
    ), (
        f"Prefect {PREFECT}'s SubprocessASGIServer._run_uvicorn_command now runs {prefects} "
        f"(None: computed), flows/server.py (EarlyServer._spawn) runs {ours}; {FIX} to run the same"
    )
    assert ours[0] == sys.executable and ours[ours.index("--port") + 1].isdigit()
    assert ours[ours.index("--app-dir") + 1] == str(PREFECT_DIR.parent), "--app-dir: where prefect is"
    assert prefects_env == flows.server._SERVER_ENV, (
        f"Prefect {PREFECT} gives its temporary server the environment {prefects_env}, flows/server.py "
        f"(_SERVER_ENV) gives {flows.server._SERVER_ENV}; {FIX} to give the same"
    )
    assert {k: our_env[k] for k in prefects_env} == prefects_env


def test_create_app_is_the_factory_uvicorn_calls_and_reads_the_server_environment() -> None:
    create_app = _function(_tree(SERVER_PY), "create_app", "prefect.server.api.server")
    params = create_app.args
    assert len(params.defaults) == len(params.posonlyargs) + len(params.args) and None not in (
        params.kw_defaults
    ), (
        f"Prefect {PREFECT}'s create_app() has required arguments: `uvicorn --factory {FACTORY}` calls "
        f"it with none; {FIX}"
    )
    names = {a.arg for a in params.args}
    for variable, param in [("PREFECT__SERVER_EPHEMERAL", "ephemeral"), ("PREFECT__SERVER_FINAL", "final")]:
        assert variable in _strings(create_app) and param in names, (
            f"Prefect {PREFECT}'s create_app() no longer reads {variable} into its `{param}` argument: "
            f"the temporary server flows/server.py starts would not be {param}; {FIX} (_SERVER_ENV)"
        )


def test_prefect_starts_that_server_where_no_api_is_configured() -> None:
    get_client = _function(_tree(CLIENT_PY), "get_client", "prefect.client.orchestration")
    strings = {n.id for n in ast.walk(get_client) if isinstance(n, ast.Name)} | _strings(get_client)
    for name in ("SubprocessASGIServer", "PREFECT_API_URL", "PREFECT_SERVER_EPHEMERAL_ENABLED"):
        assert name in strings, (
            f"Prefect {PREFECT}'s get_client() no longer uses {name} to decide on and start its "
            f"temporary server; {FIX} (EarlyServer.start decides as get_client did)"
        )


def test_the_settings_flows_server_reads_exist_and_mean_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect.settings as ps

    names = ["PREFECT_API_URL", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]
    names += ["PREFECT_UI_ENABLED", "Settings", "get_current_settings", "temporary_settings"]
    names += ["PREFECT_UI_URL", "PREFECT_LOGGING_TO_API_ENABLED", "PREFECT_RESULTS_LOCAL_STORAGE_PATH"]
    missing = [n for n in names if not hasattr(ps, n)]
    assert not missing, f"prefect.settings of Prefect {PREFECT} has no {', '.join(missing)}; {FIX}"

    settings = ps.get_current_settings()
    for path in ("api.url", "server.ephemeral.enabled"):
        obj: Any = settings
        for part in path.split("."):
            assert hasattr(obj, part), (
                f"Prefect {PREFECT}'s settings have no .{path}; {FIX} (EarlyServer.start)"
            )
            obj = getattr(obj, part)
    assert isinstance(settings.server.ephemeral.enabled, bool)
    timeout = ps.PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
    assert isinstance(timeout, int | float) and timeout > 0, (
        f"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value() is {timeout!r}; {FIX} (EarlyServer.ready)"
    )

    url = "http://127.0.0.1:9/api"
    with ps.temporary_settings(updates={ps.PREFECT_API_URL: url}):
        assert ps.get_current_settings().api.url == url == ps.PREFECT_API_URL.value(), (
            f"temporary_settings(updates={{PREFECT_API_URL: url}}) no longer sets the API URL; {FIX}"
        )
    assert ps.get_current_settings().api.url == settings.api.url, "temporary_settings did not restore"

    # the environment variables flows/server.py sets mean these settings to a child process
    for variable, value, field, expected in [
        ("PREFECT_API_URL", url, "api.url", url),
        ("PREFECT_UI_ENABLED", "0", "server.ui.enabled", False),
        ("PREFECT_SERVER_EPHEMERAL_ENABLED", "false", "server.ephemeral.enabled", False),
        ("PREFECT_SERVER_MEMO_STORE_PATH", "/d/memo.toml", "server.memo_store_path", Path("/d/memo.toml")),
        (
            "PREFECT_SERVER_DATABASE_CONNECTION_URL",
            "sqlite+aiosqlite:////d/s.db",
            "server.database.connection_url",
            None,
        ),
    ]:
        monkeypatch.setenv(variable, value)
        obj = ps.Settings()
        for part in field.split("."):
            obj = getattr(obj, part, None)
        if expected is None:  # a secret
            obj, expected = obj.get_secret_value(), value
        assert obj == expected, (
            f"with {variable}={value}, Prefect {PREFECT}'s Settings().{field} is {obj!r}, "
            f"not {expected!r}; {FIX}"
        )
