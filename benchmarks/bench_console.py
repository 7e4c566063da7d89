"""What the person on call waits for: `wmf run` as a user types it, on the demo dataset.

    python benchmarks/bench_console.py            # the demo's scale, 0.005 (502,403 ratings)

Measured, each a fresh `wmf` process on a 2-core machine: the first line on the console; a run
refused because DATA is held; a run refused before it starts (a RAW that does not exist); a
cold night on a new DATA (its Prefect database created and migrated); an unchanged night, bare
(the command boots Prefect's temporary server; median of five). Yardsticks in the same run: a
bare `python -c pass`, the import of the pipeline flow alone (Prefect, polars, matplotlib), and
a boot of Prefect's server alone on the same database: a bare night cannot beat the larger of
the last two. The load average is printed before and after: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wmf import store  # noqa: E402
from wmf.data.generate import generate  # noqa: E402

WMF = [sys.executable, "-m", "flows.cli"]
TARGETS = {"first line": 1.0, "refused (lock)": 1.0, "unchanged night": 5.0}  # issue 23, seconds


def timed(command: list[str]) -> tuple[float, float, int]:
    """(seconds to the first stderr line, seconds in all, exit code) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    proc.stderr.readline()
    first = time.perf_counter() - started
    proc.stderr.read()
    code = proc.wait()
    return first, time.perf_counter() - started, code


def server_boot(data: Path) -> float:
    """Seconds until a temporary server on DATA's database answers (flows.server's own start)."""
    code = f"""
import time, urllib.request, contextlib
from pathlib import Path
from flows.server import EarlyServer
s = EarlyServer()
t = time.perf_counter()
s._spawn(Path({str(data)!r}))
while True:
    with contextlib.suppress(OSError), urllib.request.urlopen(s.url + "/health", timeout=1):
        break
    time.sleep(0.02)
print(time.perf_counter() - t)
s.stop()
"""
    return float(
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=0.005)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}  (2-core machine)")
    with tempfile.TemporaryDirectory() as tmp:
        raw, data = Path(tmp) / "raw", Path(tmp) / "data"
        generate(raw, scale=args.scale, seed=0, progress=False)
        night = [*WMF, "run", "--raw", str(raw), "--data", str(data)]
        figures: dict[str, float] = {}
        figures["python -c pass"] = timed([sys.executable, "-c", "import sys; print(file=sys.stderr)"])[1]
        figures["import the pipeline flow"] = timed([sys.executable, "-c", "import flows.pipeline"])[1]
        first, figures["cold night (new DATA)"], code = timed(night)
        assert code == 0, "the cold night failed"
        figures["first line"] = first
        figures["server boot alone"] = server_boot(data)
        reruns = [timed(night) for _ in range(args.repeats)]
        assert all(code == 0 for *_, code in reruns)
        figures["unchanged night"] = statistics.median(total for _, total, _ in reruns)
        with store.exclusive(data):
            figures["refused (lock)"] = timed(night)[1]
        missing = [*WMF, "run", "--raw", str(Path(tmp) / "nowhere"), "--data", str(Path(tmp) / "other")]
        figures["refused (no RAW)"] = timed(missing)[1]
    for name, seconds in figures.items():
        target = f"   target <= {TARGETS[name]:.1f} s" if name in TARGETS else ""
        print(f"{name:<28} {seconds:6.2f} s{target}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
