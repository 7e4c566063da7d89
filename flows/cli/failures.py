"""How a command ends: its exit code, and a failure told in one line (what failed, where, what to
do next, where the traceback is).

    0    done
    1    a stage failed (see the log), or `wmf status`: the last run failed or an output is damaged
    2    bad input: an option, RAW, DATA, a config file or a malformed raw line; fix it and rerun
    3    another run holds DATA (pass --wait to queue behind it)
    130  interrupted (Ctrl-C, SIGTERM); rerunning resumes, finished stages are reused
"""

from __future__ import annotations

import shlex
import sys
from enum import IntEnum
from pathlib import Path

from wmf.errors import BadInputError, DamagedOutputError, WmfError
from wmf.store import DataLockedError


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    LOCKED = 3
    INTERRUPTED = 130


def exit_code(error_type: str | None) -> Exit:
    """The exit code of a failure by its exception's class name (the run summary keeps names:
    a failure may come from another process)."""
    cls = _classes().get(error_type or "")
    if cls is None or issubclass(cls, DamagedOutputError):
        return Exit.FAILED  # a bug, memory, a disk: not the input's fault
    if issubclass(cls, DataLockedError):
        return Exit.LOCKED
    return Exit.BAD_INPUT


def line(message: str, error_type: str | None, argv: list[str], log: Path | None) -> str:
    """`wmf: <what failed>; <what to do>; log: <file>`, one line."""
    parts = [f"wmf: {message}"]
    if error_type == BadInputError.__name__:
        parts.append(
            "fix that line, or add --on-bad-lines skip to set malformed lines aside (rejects.parquet)"
        )
    if exit_code(error_type) != Exit.LOCKED:
        parts.append(f"then rerun `{command(argv)}`: the stages that finished are reused")
    if log is not None:
        parts.append(f"log: {log}")
    return "; ".join(parts)


def tell(text: str) -> None:
    """Print `text` to stderr on a line of its own: a failed stage's progress bar, left open
    mid-line, is closed first."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
    print(text, file=sys.stderr, flush=True)


def command(argv: list[str]) -> str:
    """The command line as typed, to rerun it."""
    return shlex.join(["wmf", *argv])


def _classes() -> dict[str, type[WmfError]]:
    found: dict[str, type[WmfError]] = {}
    todo: list[type[WmfError]] = [WmfError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found
