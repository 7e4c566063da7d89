"""`wmf status`: how the last run ended, what each stage has published, whether a run with
these options would reuse it, and (`verify`) whether every published byte is still what the
stage wrote. A monitoring check calls it: `failing` says whether it should page someone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wmf import store
from wmf.config import PipelineConfig
from wmf.errors import MissingInputError, WmfError
from wmf.pipeline import history, outputs
from wmf.pipeline.plan import StagePlan, plan
from wmf.pipeline.registry import PIPELINE, SEARCHES

FAILED_STATES = ("Failed", "Crashed", "Interrupted")


@dataclass(frozen=True)
class Status:
    data: str
    last_run: dict[str, Any] | None  # state, when, the stage it failed at and why; None: no run yet
    stages: dict[str, Any]

    @property
    def failing(self) -> bool:
        """The last run did not complete, or a published file is damaged (with `verify`)."""
        last = (self.last_run or {}).get("state")
        return last in FAILED_STATES or any(entry.get("damaged") for entry in self.stages.values())

    def to_json(self) -> dict[str, Any]:
        return {"data": self.data, "failing": self.failing, "last_run": self.last_run, "stages": self.stages}


def status(data: Path, raw: Path | None, config: PipelineConfig, verify: bool = False) -> Status:
    """The last run, and the stages' outputs (`stages`)."""
    if not Path(data).is_dir():
        raise MissingInputError(f"DATA {data} does not exist: no wmf run has written it")
    return Status(str(data), last_run(Path(data)), stages(data, raw, config, verify))


def last_run(data: Path) -> dict[str, Any] | None:
    """How the last pipeline run ended: the history's last row, or the run under way (Running),
    or one that ended without a row (Crashed: killed, out of memory)."""
    mark = history.unfinished(data)
    if mark is None:
        row = history.last(data)
        return None if row is None else {**row, "finished_at": str(row["finished_at"])[:19] + " UTC"}
    running = store.is_locked(data)
    return {
        "state": "Running" if running else "Crashed",
        "finished_at": None,
        "started_at": mark["started_at"][:19].replace("T", " ") + " UTC",
        "failed_stage": None if running else mark["stage"],
        "stage": mark["stage"],
        "error": None if running else "ended without a record: killed (out of memory?) or stopped",
    }


def stages(data: Path, raw: Path | None, config: PipelineConfig, verify: bool = False) -> dict[str, Any]:
    """Each pipeline stage's published output (and each search's, once published), and whether
    a run with these options would reuse it.

    A stage is current when its key is the one a run would compute now (from the published
    outputs it reads). Keys hash the content of what a stage reads, so a stage that reads one
    that will run again may still be reused, if the rerun writes the same bytes: its currency
    is then unknown (None), as ingest's is without --raw.
    """
    report: dict[str, Any] = {}
    will_run: set[str] = set()
    for spec in (*PIPELINE, *SEARCHES):
        root = Path(data) / spec.directory
        found = outputs.published(root)
        if found is None and spec in SEARCHES:
            continue  # run on demand: nothing to say until one is published
        if found is None:
            report[spec.name] = {"published": False, "current": False}
            if store.latest(root) is not None:
                report[spec.name]["reason"] = "written by an older wmf: the next `wmf run` rebuilds it"
            will_run.add(spec.name)
            continue
        directory, manifest = found
        entry: dict[str, Any] = {
            "published": True,
            "key": manifest["key"],
            "created_at": manifest["created_at"],
            "seconds": manifest.get("seconds"),
            "directory": str(directory),
            "config": manifest["config"],
            "outputs": manifest["outputs"],
        }
        if verify:
            entry["damaged"] = outputs.damaged(directory, outputs.fingerprints(manifest))
        if spec in SEARCHES:
            entry["current"], entry["reason"] = (
                None,
                f"run on demand, with its own options: `wmf {spec.name}`",
            )
        elif spec.raw is not None and raw is None:
            entry["current"], entry["reason"] = None, "pass --raw RAW to compare with the raw files"
        elif any(read.stage in will_run for read in spec.reads):
            entry["current"] = None
            entry["reason"] = UPSTREAM_RUNS
        else:
            try:
                planned = plan(spec.name, data, config, raw)
            except (WmfError, OSError) as exc:
                entry["current"], entry["reason"] = False, str(exc)
            else:
                entry["current"] = planned.key == manifest["key"]
                if not entry["current"]:
                    entry["reason"] = _why_stale(planned, manifest)
        if entry["current"] is False or entry.get("reason") == UPSTREAM_RUNS:
            will_run.add(spec.name)
        report[spec.name] = entry
    return report


UPSTREAM_RUNS = "an earlier stage will run first; this one is reused if its output stays the same"


def _why_stale(planned: StagePlan, manifest: dict[str, Any]) -> str:
    changed = sorted(k for k, v in planned.config.items() if manifest["config"].get(k) != v)
    if changed:
        return "parameters differ: " + ", ".join(changed)
    if planned.inputs != manifest["inputs"]:
        return "inputs changed"
    return "code changed"
