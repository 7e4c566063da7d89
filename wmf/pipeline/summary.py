"""The run summary: what a run did, stage by stage. The one contract between the flows, the
history, the reports, replay and the command line (`wmf run --json` prints `to_json`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageResult:
    """One stage of a run: its state (Completed, Cached or Failed) and seconds, then either
    where its output is and its tables (path, rows), or the error; `details` are the stage's
    own fields (a search's best options)."""

    state: str
    seconds: float
    key: str | None = None
    directory: str | None = None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.state == "Failed"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "seconds": self.seconds}
        if self.failed:
            out["error"] = self.error
        else:
            out.update(key=self.key, directory=self.directory, outputs=self.outputs)
        return {**out, **self.details}

    @classmethod
    def from_manifest(
        cls, state: str, seconds: float, manifest: dict[str, Any], directory: str, details: dict[str, Any]
    ) -> StageResult:
        tables = {name: {"path": t["path"], "rows": t["rows"]} for name, t in manifest["outputs"].items()}
        return cls(state, seconds, manifest["key"], directory, tables, details=details)


@dataclass
class RunSummary:
    data: str
    raw: str | None
    stages: dict[str, StageResult] = field(default_factory=dict)
    error: str | None = None  # a failure before or outside the stages

    @property
    def failed_stage(self) -> str | None:
        return next((name for name, result in self.stages.items() if result.failed), None)

    @property
    def message(self) -> str:
        """What went wrong, in one line (empty when nothing did)."""
        failed = self.failed_stage
        return f"{failed} failed: {self.stages[failed].error}" if failed else self.error or ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "data": self.data,
            "raw": self.raw,
            "stages": {name: r.to_json() for name, r in self.stages.items()},
        }
        return out if self.error is None else {**out, "error": self.error}
