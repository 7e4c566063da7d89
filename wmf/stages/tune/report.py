"""What a search shows: the best options (as TOML, with the plot) and the table of trials."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from wmf import configfile
from wmf.layout import Tune
from wmf.stages import Artifact, embedded_png


def details(manifest: dict[str, Any], published: Path) -> dict[str, Any]:
    """The run summary's entry: the best options, their value, and the published TOML."""
    summary = manifest["summary"]
    return {
        "best": summary["best"],
        "best_value": summary["best_value"],
        "metric": summary["metric"],
        "best_toml": str(published / Tune.BEST),
        # DATA/tune/latest -> DATA, and the RAW of its run: a command that runs as printed
        "train_command": shlex.join(
            [
                *("wmf", "run", "--raw", str(manifest["raw"])),
                *("--data", str(published.parents[1]), "--config", str(published / Tune.BEST)),
            ]
        ),
    }


def lines(details: dict[str, Any]) -> list[str]:
    return [
        f"best validation {details['metric']} {details['best_value']:.4f}: {details['best']}",
        f"train with them: {details['train_command']}",
    ]


def artifacts(manifest: dict[str, Any], state: str) -> list[Artifact]:
    import polars as pl

    summary = manifest["summary"]
    directory = Path(manifest["outputs"]["trials"]["path"]).parent
    text = "\n".join(
        [
            "# wmf tune",
            "",
            f"- state: {state}; trials: {summary['states']}",
            f"- best: trial {summary['best_trial']}, "
            f"validation {summary['metric']} {summary['best_value']:.4f}",
            f"- use it: `wmf run --config {directory / Tune.BEST}`",
            "",
            "```toml",
            configfile.dumps(summary["best"]).strip(),
            "```",
            "",
            embedded_png(directory / Tune.PLOT, "tune history"),
        ]
    )
    trials = pl.read_parquet(directory / Tune.TRIALS)
    return [
        Artifact("wmf-tune", "wmf tune: best options", markdown=text + "\n"),
        Artifact(
            "wmf-tune-trials",
            f"wmf tune: one row per trial (validation {summary['metric']})",
            table=trials.with_columns(pl.col(pl.Float64).round(6)).to_dicts(),
        ),
    ]
