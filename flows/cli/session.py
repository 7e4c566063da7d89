"""What every command that runs flows does around them, in this order:

1. say at once what it is about to do;
2. check what can be checked in milliseconds (`wmf.pipeline.preflight`): a typo costs no 8 s;
3. take DATA's lock: a second run on the same DATA is refused here, before it is a night;
4. open the command's log in DATA/logs and route Prefect's console there (`logs`);
5. boot Prefect's temporary server (`flows.server`), with its database in DATA.

An interrupt (Ctrl-C, SIGTERM) ends the command with the night recorded as interrupted.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from flows.cli import logs
from flows.server import SERVER
from wmf import store
from wmf.config import PipelineConfig
from wmf.pipeline import preflight


@dataclass(frozen=True)
class Session:
    data: Path
    log: Path


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def session(
    command: str,
    data: Path,
    raw: Path | None,
    names: list[str],
    config: PipelineConfig,
    wait: bool = False,
    verbose: bool = False,
) -> Iterator[Session]:
    data = Path(data).absolute()
    say(f"wmf {command}: {' '.join(names)} on {data}" + (f" from {raw}" if raw is not None else ""))
    preflight.check(data, raw, names, config)
    with store.exclusive(
        data, wait=wait, on_wait=lambda holder: say(f"waiting for the run holding {data} ({holder})")
    ):
        log = logs.new_log(data, command)
        SERVER.start(data)
        from prefect.logging.configuration import ensure_logging_setup

        ensure_logging_setup()
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            with logs.routed(log, verbose):
                yield Session(data, log)
        except KeyboardInterrupt:
            from wmf.pipeline import history

            history.record_unfinished(data, "Interrupted", "was interrupted")
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
