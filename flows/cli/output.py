"""What the `wmf` commands print: a run's summary, the status, a glimpse of the demo's tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wmf.layout import Export
from wmf.pipeline.summary import RunSummary


def print_summary(summary: RunSummary, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary.to_json(), indent=2, default=str))
        return
    from flows.report import stage_report

    for stage, result in summary.stages.items():
        line = f"{stage:<7} {result.state:<9} {result.seconds:>8.1f} s"
        print(line + (f"  {result.error}" if result.failed else f"  {result.directory or ''}"))
        for name, table in result.outputs.items():
            print(f"          {name:<22} {table['rows']:>12,} rows  {table['path']}")
        if result.details and (lines := stage_report(stage, "lines")):
            for text in lines(result.details):
                print(f"          {text}")


def print_status(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    marks = {True: "current", False: "STALE", None: "unknown"}
    for stage, entry in report.items():
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


def show_demo_results(exports: Path) -> None:
    """A glimpse of what analysts get: headline metrics and one user's top five."""
    import polars as pl

    metrics = json.loads((exports / Export.METRICS).read_text())
    print(f"\nPublished tables: {exports}")
    refit = " (of the model before its refit on all data)" if metrics["refit"] else ""
    print(f"  held-out evaluation on {metrics['n_users_evaluated']:,} users{refit}")
    for metric in ("recall@20", "ndcg@100"):
        model, popular = metrics["model"][metric], metrics["popularity"][metric]
        se = metrics["stderr"][metric]
        print(
            f"  {metric:<10} model {model:.3f} (standard error {se:.3f})   popularity baseline {popular:.3f}"
        )
    recs = pl.read_parquet(exports / Export.RECOMMENDATIONS, n_rows=5)
    print(f"  top 5 for customer {recs['user_id'][0]}:")
    for row in recs.iter_rows(named=True):
        print(f"    {row['rank']}. {row['title']} ({row['year']})  score {row['score']:.3f}")
