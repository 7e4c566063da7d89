"""Running the `wmf` command line in-process, as the flow tests do."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from flows.cli import main


def wmf(*args: str) -> tuple[int, Any, str]:
    """Run the CLI in-process with --json; returns (exit code, parsed stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--json"])
    return code, json.loads(out.getvalue()), err.getvalue()
