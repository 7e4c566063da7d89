"""`wmf replay`: rebuild a stretch of the timeline, one pipeline flow run per simulated night.

Night i keeps the ratings dated up to START + i * EVERY days (the index's `until`), so
the ingest stays cached across nights and each night warm-starts from the last one's
model, as a real nightly schedule would. One line per night: seconds per stage, warm or
cold, the held-out metrics and the drift from the night before.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wmf.config import PipelineConfig, RunConfig
from wmf.pipeline import history
from wmf.pipeline.summary import RunSummary

Runner = Callable[[Path, Path, PipelineConfig, RunConfig], tuple[bool, RunSummary]]


def nights(start: datetime.date, count: int, every: int) -> list[datetime.date]:
    return [start + datetime.timedelta(days=every * i) for i in range(count)]


def replay(
    data: Path,
    raw: Path,
    config: PipelineConfig,
    run: RunConfig,
    days: list[datetime.date],
    runner: Runner,
    echo: Callable[[str], None] = print,
) -> tuple[bool, list[dict[str, Any]]]:
    """Run the pipeline once per day in `days` (stopping at a failed night); the history rows."""
    rows = []
    for day in days:
        night = dataclasses.replace(config, index=dataclasses.replace(config.index, until=day.isoformat()))
        ok, summary = runner(data, raw, night, run)
        row = history.row(summary, "Completed" if ok else "Failed")
        rows.append(row)
        echo(line(day, row, summary))
        if not ok:
            return False, rows
    return True, rows


def line(day: datetime.date, row: dict[str, Any], summary: RunSummary) -> str:
    """`2005-06-30  ingest 1.2 s Cached  index 0.5 s  train 2.1 s warm  ...  recall@20 ...`."""
    parts = [day.isoformat()]
    for stage, result in summary.stages.items():
        state = "" if result.state == "Completed" else f" {result.state}"
        start = f" {result.details['start']}" if "start" in result.details else ""
        parts.append(f"{stage} {result.seconds:.1f} s{state}{start}")
        if result.error:
            parts.append(result.error)
    figures = {
        "recall@20": "recall@20",
        "ndcg@100": "ndcg@100",
        "rbo": "rbo",
        "share_changed@10": "changed@10",
    }
    parts += [f"{label} {row[name]:.4f}" for name, label in figures.items() if row.get(name) is not None]
    if row.get("new_users") is not None:
        parts.append(f"new users {row['new_users']:,} movies {row['new_movies']:,}")
    return "  ".join(parts)
