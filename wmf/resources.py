"""Peak resident memory of this process, per stage.

Linux lets a process reset its high-water mark (`/proc/self/clear_refs`, "5"), so
each stage of a pipeline run reports its own peak rather than the run's so far;
elsewhere the process's peak since it started is reported.
"""

from __future__ import annotations

import contextlib
import resource
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_rss() -> None:
    """Start a new high-water mark of resident memory (a no-op where Linux's is unavailable)."""
    with contextlib.suppress(OSError):
        _CLEAR_REFS.write_text("5")


def peak_rss_gb() -> float:
    """Peak resident memory in GB since the last reset (or since the process started)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux
