"""What the optimizer study shows: each optimizer's final loss and metrics, and its plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wmf.layout import Compare
from wmf.stages import Artifact, embedded_png


def artifacts(manifest: dict[str, Any], _state: str) -> list[Artifact]:
    directory = Path(manifest["outputs"]["comparison"]["path"]).parent
    plot = embedded_png(directory / Compare.PLOT, "loss against iteration and seconds")
    return [
        Artifact(
            "wmf-compare",
            "wmf compare: each optimizer's final loss, metrics",
            table=manifest["summary"]["final"],
        ),
        Artifact("wmf-compare-plot", "wmf compare: the loss curves", markdown=f"# wmf compare\n\n{plot}\n"),
    ]
