"""Malformed input lines: an error naming the file, the line and why, or a row of rejects.parquet."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmf.errors import BadInputError


@dataclass
class Rejects:
    """Collects rejected lines, or raises on the first one in error mode."""

    raw: Path
    mode: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, path: Path, line: int, text: str, reason: str) -> None:
        if self.mode == "error":
            raise BadInputError(path, line, text, reason)
        self.rows.append({"file": file_name(path, self.raw), "line": line, "text": text, "reason": reason})


def file_name(path: Path, raw: Path) -> str:
    """How reports name a raw file: relative to RAW where it lies inside it."""
    return path.relative_to(raw).as_posix() if path.is_relative_to(raw) else str(path)
