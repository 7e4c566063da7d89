"""`wmf status`: what each stage has published, and whether a run with these options would reuse it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wmf import stages
from wmf.config import PipelineConfig
from wmf.errors import WmfError


def status(data: Path, raw: Path | None, config: PipelineConfig) -> dict[str, Any]:
    """Each stage's published output, and whether a run with these options would reuse it.

    A stage is current when its key matches what a run would compute now and the
    stage before it is current too (without --raw, ingest's currency is unknown).
    """
    report: dict[str, Any] = {}
    upstream_current: bool | None = None
    for stage in stages.STAGES:
        try:
            manifest = stages.latest_manifest(data, stage)
        except WmfError:
            report[stage] = {"published": False, "current": False}
            upstream_current = False
            continue
        entry = {
            "published": True,
            "key": manifest["key"],
            "created_at": manifest["created_at"],
            "seconds": manifest.get("seconds"),
            "directory": str(stages.store.latest_dir(data, stages.DIRECTORY[stage])),
            "config": manifest["config"],
            "outputs": manifest["outputs"],
        }
        if stage == "ingest" and raw is None:
            entry["current"] = None
            entry["reason"] = "pass --raw RAW to compare with the raw files"
        else:
            try:
                planned = stages.plan(stage, data, config, raw)
            except (WmfError, OSError) as exc:
                entry["current"], entry["reason"] = False, str(exc)
            else:
                entry["current"] = planned.key == manifest["key"] and upstream_current is not False
                if planned.key != manifest["key"]:
                    entry["reason"] = _why_stale(planned, manifest)
                elif upstream_current is False:
                    entry["reason"] = "an earlier stage is not current"
        upstream_current = entry["current"]
        report[stage] = entry
    return report


def _why_stale(planned: Any, manifest: dict[str, Any]) -> str:
    changed = sorted(k for k, v in planned.config.items() if manifest["config"].get(k) != v)
    if changed:
        return "parameters differ: " + ", ".join(changed)
    if planned.inputs != manifest["inputs"]:
        return "inputs changed"
    return "code changed"


def print_status(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    marks = {True: "current", False: "STALE", None: "unknown"}
    for stage, entry in report.items():
        if not entry["published"]:
            print(f"{stage:<7} not published")
            continue
        line = f"{stage:<7} {marks[entry['current']]:<8} {entry['created_at']}  key {entry['key']}"
        print(line + (f"  ({entry['reason']})" if "reason" in entry else ""))
        print(f"          {entry['directory']}")
        params = ", ".join(f"{k}={v}" for k, v in sorted(entry["config"].items()))
        print(f"          parameters: {params}")
        for name, table in entry["outputs"].items():
            print(f"          {name:<22} {table['rows']:>12,} rows  {table['fingerprint']}")
