"""Errors the pipeline raises on purpose; anything else is a bug."""

from __future__ import annotations

from pathlib import Path


class WmfError(Exception):
    """Base class: a problem with the user's input or setup, never worth a retry."""


class BadInputError(WmfError):
    """A malformed input line; the message names the file, the line number and the line."""

    def __init__(self, path: Path | str, line_number: int, line: str, reason: str) -> None:
        self.path = str(path)
        self.line_number = line_number
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line_number}: {reason}: {line!r}")

    def __reduce__(self) -> tuple[type, tuple[str, int, str, str]]:
        # Crossing a process boundary (Dask, Prefect results) rebuilds it from its fields.
        return (type(self), (self.path, self.line_number, self.line, self.reason))


class MissingInputError(WmfError):
    """An input file or an upstream stage's output is absent or empty."""


class ShrinkError(WmfError):
    """A new ingest holds many fewer ratings than the published one (a truncated download?)."""


class DamagedOutputError(WmfError):
    """Files of a published output no longer match the fingerprints of its manifest."""

    def __init__(self, stage: str, directory: Path, damaged: list[str]) -> None:
        self.stage, self.directory, self.damaged = stage, str(directory), damaged
        names = ", ".join(str(Path(directory) / name) for name in damaged)
        super().__init__(
            f"{names}: not the bytes the {stage} stage wrote (changed on disk since: a damaged disk, "
            f"an edit, a partial copy?); `wmf run` rebuilds the {stage} stage, or delete {directory}"
        )

    def __reduce__(self) -> tuple[type, tuple[str, Path, list[str]]]:
        return (type(self), (self.stage, Path(self.directory), self.damaged))


class ConfigError(WmfError):
    """An option's value that cannot be meant (a month 13, a fraction above 1, an unknown metric),
    refused before anything runs; the message names the option as typed (`--until`), the value
    and what is expected."""
