"""What the `wmf` commands print: a run's summary, the status, a glimpse of the demo's tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wmf.layout import Export
from wmf.pipeline.summary import RunSummary

if TYPE_CHECKING:
    from wmf.pipeline.status import Status


def print_summary(summary: RunSummary, as_json: bool, log: Path | None = None) -> None:
    """One line per stage (state, seconds, output) and what its report says under it (warm or
    cold, the held-out metrics beside popularity, where the analysts' tables are), then the
    tables of the last stage: what the command made."""
    if as_json:
        print(
            json.dumps({**summary.to_json(), "log": None if log is None else str(log)}, indent=2, default=str)
        )
        return
    from flows.report import stage_report

    for stage, result in summary.stages.items():
        line = f"{stage:<7} {result.state:<9} {result.seconds:>8.1f} s"
        print(line + (f"  {result.error}" if result.failed else f"  {result.directory or ''}"))
        if result.details and (lines := stage_report(stage, "lines")):
            for text in lines(result.details):
                print(f"          {text}")
    last = list(summary.stages.values())[-1] if summary.stages else None
    if last is not None and not last.failed:
        for name, table in last.outputs.items():
            print(f"          {name:<22} {table['rows']:>12,} rows  {table['path']}")
    if summary.link:
        print(f"Prefect: {summary.link}")


def print_status(report: Status, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json(), indent=2, default=str))
        return
    print(_last_run(report.last_run))
    marks = {True: "current", False: "STALE", None: "unknown"}
    for stage, entry in report.stages.items():
        if not entry["published"]:
            print(f"{stage:<7} not published" + (f"  ({entry['reason']})" if "reason" in entry else ""))
            continue
        line = f"{stage:<7} {marks[entry['current']]:<8} {entry['created_at']}  key {entry['key']}"
        print(line + (f"  ({entry['reason']})" if "reason" in entry else ""))
        print(f"          {entry['directory']}")
        params = ", ".join(f"{k}={v}" for k, v in sorted(entry["config"].items()))
        print(f"          parameters: {params}")
        for name, table in entry["outputs"].items():
            print(f"          {name:<22} {table['rows']:>12,} rows  {table['fingerprint']}")
        if "damaged" in entry:
            damaged = entry["damaged"]
            print("          DAMAGED: " + ", ".join(damaged) if damaged else "          verified: every file")


def _last_run(run: dict[str, Any] | None) -> str:
    """`last run: Failed at 2026-12-04 03:00:12 UTC, in ingest: <error>`."""
    if run is None:
        return "last run: none recorded yet"
    if run["state"] == "Running":
        return f"last run: running since {run['started_at']}" + (
            f", in {run['stage']}" if run["stage"] else ""
        )
    when = run["finished_at"] or f"begun {run['started_at']}"
    text = f"last run: {run['state']} {when}"
    if run["failed_stage"]:
        text += f", in {run['failed_stage']}"
    return text + (f": {run['error']}" if run["error"] else "")


def show_demo_results(exports: Path) -> None:
    """A glimpse of what analysts get (the metrics are in the summary above): one user's top five."""
    import polars as pl

    recs = pl.read_parquet(exports / Export.RECOMMENDATIONS, n_rows=5)
    print(f"\ntop 5 for customer {recs['user_id'][0]}:")
    for row in recs.iter_rows(named=True):
        print(f"  {row['rank']}. {row['title']} ({row['year']})  score {row['score']:.3f}")
