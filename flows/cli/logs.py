"""Where a command's log goes: all of it, tracebacks included, to a file in DATA; to the console
only what the person running it acts on (warnings), unless `--verbose`; progress bars stay.

Prefect logs every flow and task run at INFO and every failure with its traceback through
the engine, once per level it passes (task, flow, hook): 40-66 lines for one bad input line.
The command prints that failure once, in one line, at its end (`flows.cli.failures`).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from wmf.layout import Logs


def new_log(data: Path, command: str) -> Path:
    """A fresh log file's path in DATA/logs (the folder made, its oldest files pruned)."""
    folder = Path(data) / Logs.DIRECTORY
    folder.mkdir(parents=True, exist_ok=True)
    for old in sorted(folder.glob(Logs.FILE.format(time="*", command="*")))[: -Logs.KEEP + 1 or None]:
        old.unlink(missing_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return folder / Logs.FILE.format(time=stamp, command=command)


@contextlib.contextmanager
def routed(log: Path, verbose: bool) -> Iterator[None]:
    """After Prefect has set up its logging: everything to `log`, and Prefect's console handler
    replaced by one for the operator (kept as it is with `verbose`); as it was, after."""
    from prefect.logging.formatters import PrefectFormatter
    from prefect.logging.handlers import PrefectConsoleHandler

    to_file = logging.FileHandler(log, encoding="utf-8", delay=True)
    to_file.setFormatter(
        PrefectFormatter(
            format="%(asctime)s | %(levelname)-7s | %(name)s - %(message)s",
            flow_run_fmt="%(asctime)s | %(levelname)-7s | flow run %(flow_run_name)r - %(message)s",
            task_run_fmt="%(asctime)s | %(levelname)-7s | task run %(task_run_name)r - %(message)s",
        )
    )
    root = logging.getLogger()
    consoles = [] if verbose else [h for h in root.handlers if isinstance(h, PrefectConsoleHandler)]
    operator = logging.StreamHandler(sys.stderr)
    operator.addFilter(_for_operator)
    operator.setFormatter(_OperatorFormatter())
    added = [to_file] if verbose else [to_file, operator]
    for handler in consoles:
        root.removeHandler(handler)
    for handler in added:
        root.addHandler(handler)
    logging.captureWarnings(True)  # Python warnings (a library's deprecation) to the log too
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for handler in added:
            root.removeHandler(handler)
            handler.close()
        for handler in consoles:
            root.addHandler(handler)


def _for_operator(record: logging.LogRecord) -> bool:
    """A warning of wmf's or Prefect's; errors are the command's to report, once, at its end."""
    return record.levelno == logging.WARNING and record.name != "py.warnings"


class _OperatorFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"wmf: warning: {record.getMessage()}"
