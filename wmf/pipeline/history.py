"""The run history: DATA/history/runs.parquet, one row per pipeline run, and its trend plot.

A nightly job is judged over nights: did quality hold, did the tables churn, did a night
fail. Each run (published or failed) appends one row with every stage's key, state and
seconds, the row counts, warm or cold, the held-out metrics and the drift figures; the
file is replaced in one rename, so a reader never sees half a row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from wmf import store
from wmf.layout import History
from wmf.pipeline.registry import PIPELINE, report
from wmf.pipeline.summary import RunSummary


def _reports() -> dict[str, Any]:
    """Each pipeline stage's report module: its history columns (`HISTORY`, `history(manifest)`)
    and what its trend plot shows (`TREND`)."""
    return {s.name: module for s in PIPELINE if (module := report(s.name)) is not None}


SCHEMA: dict[str, pl.DataType] = {
    "finished_at": pl.Datetime("us", "UTC"),
    "state": pl.String,
    "failed_stage": pl.String,
    "error": pl.String,
    **{f"{s.name}_{part}": pl.String for s in PIPELINE for part in ("key", "state")},
    **{f"{s.name}_seconds": pl.Float64 for s in PIPELINE},
    **{
        column: getattr(pl, dtype)
        for report in _reports().values()
        for column, dtype in getattr(report, "HISTORY", {}).items()
    },
}


def runs_path(data: Path) -> Path:
    return Path(data) / History.DIRECTORY / History.RUNS


def trend_path(data: Path) -> Path:
    return Path(data) / History.DIRECTORY / History.TREND


def row(summary: RunSummary, state: str) -> dict:
    """The history row of a run, from its summary and its stages' manifests."""
    out: dict[str, Any] = dict.fromkeys(SCHEMA)
    failed = summary.failed_stage
    error = (summary.stages[failed].error if failed else summary.error) if state == "Failed" else None
    out.update(finished_at=datetime.now(UTC), state=state, failed_stage=failed, error=error)
    reports = _reports()
    for stage, result in summary.stages.items():
        if f"{stage}_state" not in SCHEMA:  # a search: not a night's
            continue
        out[f"{stage}_state"], out[f"{stage}_seconds"] = result.state, result.seconds
        if result.directory is not None:
            manifest = store.read_manifest(Path(result.directory))
            out[f"{stage}_key"] = manifest["key"]
            if stage in reports and hasattr(reports[stage], "history"):
                out.update(reports[stage].history(manifest))
    return out


def record(data: Path, entry: dict[str, Any]) -> pl.DataFrame:
    """Append `entry` to the history (replaced atomically) and redraw the trend; the whole history.
    A recorded run is over: its `running` mark goes."""
    path = runs_path(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = pl.DataFrame([entry], schema=SCHEMA)
    runs = pl.concat([pl.read_parquet(path), new], how="diagonal_relaxed") if path.is_file() else new
    with store.atomic_path(path) as tmp:
        runs.write_parquet(tmp)
    trend(runs, trend_path(data))
    _running_path(data).unlink(missing_ok=True)
    return runs


# A night in progress leaves DATA/history/running.json (when it began, its stage). A
# night that records its row removes it; one killed (`kill -9`, out of memory, a reboot) cannot,
# so the next night, `wmf status` and an interrupted command find it and say so.


def begin(data: Path) -> None:
    """Mark a night as under way, first recording the one before it if that was killed."""
    if unfinished(data) is not None:
        record_unfinished(data, "Crashed", "ended without a record: killed (out of memory?) or stopped")
    now = datetime.now(UTC).isoformat()
    _running_path(data).parent.mkdir(parents=True, exist_ok=True)
    store.write_json(_running_path(data), {"started_at": now, "stage": None, "at": now})


def at_stage(data: Path, stage: str) -> None:
    """The night under way has reached `stage`."""
    mark = unfinished(data)
    if mark is not None:
        store.write_json(_running_path(data), {**mark, "stage": stage, "at": datetime.now(UTC).isoformat()})


def unfinished(data: Path) -> dict[str, Any] | None:
    """The mark of the night under way, or of one that ended without recording its row."""
    path = _running_path(data)
    return store.read_json(path) if path.is_file() else None


def record_unfinished(data: Path, state: str, why: str) -> None:
    """Record the night of the `running` mark as `state` (Interrupted, Crashed) at its last stage."""
    mark = unfinished(data)
    if mark is None:
        return
    entry: dict[str, Any] = dict.fromkeys(SCHEMA)
    entry.update(
        finished_at=datetime.fromisoformat(mark["at"]),
        state=state,
        failed_stage=mark["stage"],
        error=f"the run begun at {mark['started_at'][:19]} UTC {why}",
    )
    record(data, entry)


def last(data: Path) -> dict[str, Any] | None:
    """The latest row of the history, or None before a first run."""
    path = runs_path(data)
    if not path.is_file():
        return None
    runs = pl.read_parquet(path, columns=["finished_at", "state", "failed_stage", "error"])
    return runs.row(-1, named=True) if runs.height else None


def _running_path(data: Path) -> Path:
    return Path(data) / History.DIRECTORY / History.RUNNING


def trend(runs: pl.DataFrame, path: Path) -> None:
    """A PNG of the held-out metrics and the drift over the runs (failed ones marked)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [module.TREND for module in _reports().values() if hasattr(module, "TREND")]
    fig = Figure(figsize=(8, 5), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    number = list(range(1, runs.height + 1))
    for ax, (label, columns, limits) in zip(axes, panels, strict=True):
        for name in columns:
            ax.plot(number, runs[name].to_list(), marker="o", markersize=3, label=name)
        ax.set(ylabel=label, ylim=limits)
    axes[0].set(title="wmf runs: quality and drift over nights")
    axes[-1].set(xlabel="run")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))  # runs are counted, not measured
    for ax in axes:
        for n, state in zip(number, runs["state"], strict=True):
            if state != "Completed":
                ax.axvline(n, color="C3", alpha=0.3)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    with store.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
