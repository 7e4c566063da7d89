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
    error_type: str | None = None  # the exception's class: how the command line reports it
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.state == "Failed"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "seconds": self.seconds}
        if self.failed:
            out.update(error=self.error, error_type=self.error_type)
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
    error_type: str | None = None
    link: str | None = None  # the flow run's page, where a Prefect server with a UI is configured

    @property
    def failed_type(self) -> str | None:
        """The class name of what failed the run, a stage's or the run's own."""
        failed = self.failed_stage
        return self.stages[failed].error_type if failed else self.error_type

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
            **({"link": self.link} if self.link else {}),
        }
        return out if self.error is None else {**out, "error": self.error, "error_type": self.error_type}
