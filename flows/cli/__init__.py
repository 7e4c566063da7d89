"""The `wmf` command line: `parser` (generated from the registry and the config dataclasses),
`commands` (what each does), `output` (what they print)."""

from __future__ import annotations

import os
import sys

from flows.cli.commands import COMMANDS, FLOW_COMMANDS
from flows.cli.parser import parse_args
from flows.server import SERVER
from wmf.errors import WmfError


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        if args.command in FLOW_COMMANDS or args.command == "serve":
            _quiet_prefect()
        if args.command in FLOW_COMMANDS:
            SERVER.start()
        return COMMANDS[args.command](args, argv)
    except WmfError as exc:
        print(f"wmf: {exc}", file=sys.stderr)
        return 2


def _quiet_prefect() -> None:
    """Defaults for an offline machine and a temporary local server (overridable)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
