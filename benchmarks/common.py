"""Helpers shared by the benchmark scripts: a cached synthetic raw folder, peak memory, printing.

Benchmarks of later stages need raw Netflix-format input; generating scale 1 takes
minutes, so it is made once per (scale, seed) under <repo>/.bench/ (git-ignored) and reused.
"""

from __future__ import annotations

import os
import resource
import shutil
import uuid
from pathlib import Path

from wmf.generate import generate

BENCH_DIR = Path(__file__).resolve().parents[1] / ".bench"


def raw_dir(scale: float, seed: int = 0) -> Path:
    """Where the generated raw folder of (scale, seed) lives, whether or not it exists yet."""
    return BENCH_DIR / f"raw-{float(scale)}-{seed}"


def bench_raw(scale: float, seed: int = 0, progress: bool = True) -> Path:
    """The generated raw folder of (scale, seed), generated on first use.

    Written to a temporary sibling and renamed, so a crash or a concurrent run never
    leaves a half-written folder that looks complete.
    """
    target = raw_dir(scale, seed)
    if not target.is_dir():
        tmp = BENCH_DIR / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
        generate(tmp, scale=scale, seed=seed, progress=progress)
        adopt(tmp, target)
    return target


def adopt(tmp: Path, target: Path) -> None:
    """Rename a finished folder into place; if another run got there first, drop ours."""
    try:
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def peak_rss_gb() -> float:
    """Peak resident memory in GB of this process or of its largest waited-for child."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024**2  # ru_maxrss is in KiB on Linux


def report(name: str, **figures: object) -> None:
    """One line per benchmark: `name: key=value ...`, floats to 4 significant digits."""
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()]
    print(f"{name}: " + " ".join(parts), flush=True)
