"""What a run can be refused for before it starts: in milliseconds, before Prefect's server
boots, DATA is locked or a log is opened, so a typo costs no 8 s and leaves nothing behind.

Every check here is one a stage would make later anyway (and still does): a missing RAW,
no raw files or empty ones, an unwritable DATA, a stage run alone without the outputs it
reads, a file an option names that is missing or unreadable (the export's rules). Option
values are checked by the config dataclasses as they are built.
"""

from __future__ import annotations

import os
from pathlib import Path

from wmf.config import PipelineConfig
from wmf.errors import BadInputError, MissingInputError, WmfError
from wmf.pipeline import outputs
from wmf.pipeline.registry import STAGES


def check(data: Path, raw: Path | None, names: list[str], config: PipelineConfig) -> None:
    """Raise the WmfError a run of the stages `names` (in order) on DATA and RAW would meet first."""
    writable(data)
    for name in names:
        spec = STAGES[name]
        if spec.external is not None:
            spec.external(config)  # the files its options name (the export's rules) exist and parse
        if spec.raw is not None:
            if raw is None:
                raise MissingInputError(f"the {name} stage needs --raw RAW")
            for path in spec.raw(Path(raw)):
                if path.stat().st_size == 0:
                    raise BadInputError(path, 1, "", "empty file")
        for read in spec.reads:
            root = Path(data) / STAGES[read.stage].directory
            if read.stage not in names and outputs.published(root) is None:
                raise MissingInputError(
                    f"the {name} stage reads the published output of the {read.stage} stage, and "
                    f"{data} has none: run `wmf {read.stage}` (or `wmf run`) first"
                )


def writable(data: Path) -> None:
    """DATA, or the folder it will be made in, is a folder this process can write."""
    data = Path(data).absolute()
    existing = next(p for p in (data, *data.parents) if p.exists())
    if not existing.is_dir():
        raise WmfError(f"DATA {data}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WmfError(f"DATA {data}: cannot write in {existing} (permission denied)")
