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
from wmf.drift import FIELDS as DRIFT_FIELDS

DIRECTORY = "history"
RUNS = "runs.parquet"
TREND = "trend.png"
STAGES = ("ingest", "index", "train", "export")
METRICS = ("recall@20", "ndcg@100")

SCHEMA: dict[str, pl.DataType] = {
    "finished_at": pl.Datetime("us", "UTC"),
    "state": pl.String,
    "failed_stage": pl.String,
    "error": pl.String,
    "until": pl.String,
    **{f"{stage}_{part}": t for stage in STAGES for part, t in (("key", pl.String), ("state", pl.String))},
    **{f"{stage}_seconds": pl.Float64 for stage in STAGES},
    "ratings": pl.Int64,
    "users": pl.Int64,
    "movies": pl.Int64,
    "train_interactions": pl.Int64,
    "recommendations": pl.Int64,
    "warm_start": pl.Boolean,
    "warm_start_from": pl.String,
    **{metric: pl.Float64 for metric in METRICS},
    "popularity_recall@20": pl.Float64,
    **{
        name: pl.Int64 if name.startswith(("users", "new", "dropped")) else pl.Float64
        for name in DRIFT_FIELDS
    },
}


def runs_path(data: Path) -> Path:
    return Path(data) / DIRECTORY / RUNS


def row(
    summary: dict[str, Any], state: str, failed_stage: str | None = None, error: str | None = None
) -> dict:
    """The history row of a run, from its summary (`wmf run --json`) and its stages' manifests."""
    out: dict[str, Any] = dict.fromkeys(SCHEMA)
    out.update(finished_at=datetime.now(UTC), state=state, failed_stage=failed_stage, error=error)
    manifests = {}
    for stage, info in summary.get("stages", {}).items():
        out[f"{stage}_state"], out[f"{stage}_seconds"] = info.get("state"), info.get("seconds")
        if "directory" in info:
            manifests[stage] = store.read_manifest(Path(info["directory"]))
            out[f"{stage}_key"] = manifests[stage]["key"]
    if "ingest" in manifests:
        out["ratings"] = manifests["ingest"]["outputs"]["ratings"]["rows"]
    if "index" in manifests:
        index = manifests["index"]
        out["until"] = index["config"].get("until") or None
        out.update(users=index["summary"]["n_users"], movies=index["summary"]["n_movies"])
        out["train_interactions"] = index["summary"]["n_train"]
    if "train" in manifests:
        train = manifests["train"]["summary"]
        out["warm_start_from"] = train.get("warm_start_from")
        out["warm_start"] = train.get("warm_start_from") is not None
        out.update({metric: train.get("metrics", {}).get(metric) for metric in METRICS})
        out["popularity_recall@20"] = train.get("popularity", {}).get("recall@20")
    if "export" in manifests:
        export = manifests["export"]
        out["recommendations"] = export["outputs"]["recommendations"]["rows"]
        out.update({name: export["summary"].get("drift", {}).get(name) for name in DRIFT_FIELDS})
    return out


def record(data: Path, entry: dict[str, Any]) -> pl.DataFrame:
    """Append `entry` to the history (replaced atomically) and redraw the trend; the whole history."""
    path = runs_path(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = pl.DataFrame([entry], schema=SCHEMA)
    runs = pl.concat([pl.read_parquet(path), new], how="diagonal_relaxed") if path.is_file() else new
    with store.atomic_path(path) as tmp:
        runs.write_parquet(tmp)
    trend(runs, path.parent / TREND)
    return runs


def trend(runs: pl.DataFrame, path: Path) -> None:
    """A PNG of the held-out metrics and the drift over the runs (failed ones marked)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    quality, churn = fig.subplots(2, 1, sharex=True)
    number = list(range(1, runs.height + 1))
    for name in (*METRICS, "popularity_recall@20"):
        quality.plot(number, runs[name].to_list(), marker="o", markersize=3, label=name)
    quality.set(ylabel="held-out metric", title="wmf runs: quality and drift over nights")
    for name in ("rbo", "jaccard@10", "share_changed@10"):
        churn.plot(number, runs[name].to_list(), marker="o", markersize=3, label=name)
    churn.set(xlabel="run", ylabel="against the previous export", ylim=(0, 1.05))
    for ax in (quality, churn):
        for n, state in zip(number, runs["state"], strict=True):
            if state != "Completed":
                ax.axvline(n, color="C3", alpha=0.3)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    with store.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
