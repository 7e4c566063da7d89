"""What a reader of a plot sees: its size in pixels, and which of matplotlib's colours it drew."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def drawn(path: Path) -> tuple[tuple[int, int], set[str]]:
    """((width, height), the cycle colours "C0".."C9" that some pixel has exactly)."""
    import matplotlib.image
    from matplotlib import colors, rcParams

    image = matplotlib.image.imread(Path(path))
    pixels = np.unique((image[..., :3] * 255).round().astype(np.int64).reshape(-1, 3), axis=0)
    present = {tuple(p) for p in pixels.tolist()}
    cycle = rcParams["axes.prop_cycle"].by_key()["color"]
    seen = {
        f"C{i}" for i, c in enumerate(cycle) if tuple(round(255 * v) for v in colors.to_rgb(c)) in present
    }
    return (image.shape[1], image.shape[0]), seen
