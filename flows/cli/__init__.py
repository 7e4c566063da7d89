"""The `wmf` command line: `parser` (generated from the registry and the config dataclasses),
`commands` (what each does), `session` (what a command that runs flows does around them),
`output` (what they print), `logs` (where their logs go) and `failures` (how they end)."""

from __future__ import annotations

import os
import sys

from flows.cli.failures import Exit, exit_code, tell
from flows.cli.parser import parse_args
from wmf.errors import WmfError


def main(argv: list[str] | None = None) -> int:
    from flows.cli.commands import COMMANDS, PREFECT_COMMANDS

    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
        if args.command in PREFECT_COMMANDS:
            _quiet_prefect()
        return COMMANDS[args.command](args, argv)
    except WmfError as exc:
        tell(f"wmf: {exc}")
        return exit_code(type(exc).__name__)
    except KeyboardInterrupt:
        print(
            "wmf: interrupted; rerun the same command to resume: the stages that finished are reused",
            file=sys.stderr,
        )
        return Exit.INTERRUPTED


def _quiet_prefect() -> None:
    """Defaults for an offline machine and a temporary local server (overridable)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Prefect's client telemetry, and its notice
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
