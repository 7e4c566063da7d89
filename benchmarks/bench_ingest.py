"""Wall time, lines/s and peak RSS of ingest (goal at full scale: <= 15 s, <= 2 GB).

    python benchmarks/bench_ingest.py --scale 1            # raw files from common.bench_raw(scale)
    python benchmarks/bench_ingest.py --raw PATH           # an existing raw folder
    python benchmarks/bench_ingest.py --raw PATH --mode skip

ingest runs in a fresh child process, so neither generating the raw files nor
their memory is counted: peak RSS is the child's own high-water mark (wait4).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS, GOAL_GB = 15.0, 2.0


def run_child(raw: Path, out: Path, mode: str) -> None:
    """Inside the measured process: time ingest only, print its result as JSON."""
    from wmf.config import IngestConfig
    from wmf.stages.ingest.parse import ingest

    start = time.perf_counter()
    result = ingest(raw, out, IngestConfig(on_bad_lines=mode), progress=False)
    print(json.dumps({"seconds": time.perf_counter() - start, "result": result}))


def measure(raw: Path, mode: str) -> tuple[dict, float, float, int]:
    """Run ingest in a fresh interpreter: its output, peak RSS in GB, CPU seconds, output bytes."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-out-") as out:
        cmd = [sys.executable, __file__, "--child", str(raw), out, mode]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            sys.exit(f"ingest failed (status {status})")
        size = sum(p.stat().st_size for p in Path(out).iterdir())
        cpu = usage.ru_utime + usage.ru_stime  # whole child, interpreter start included
        return json.loads(stdout), usage.ru_maxrss / 1024**2, cpu, size  # maxrss: KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--scale", type=float, default=1.0, help="raw folder of bench_raw(scale)")
    source.add_argument("--raw", type=Path, help="an existing raw folder")
    p.add_argument("--mode", default="error", choices=("error", "skip"), help="on_bad_lines")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        run_child(Path(args.child[0]), Path(args.child[1]), args.child[2])
        return
    raw = args.raw
    if raw is None:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        try:
            from common import bench_raw  # only needed without --raw
        except ImportError:
            sys.exit("benchmarks/common.py (bench_raw) is missing: pass --raw PATH instead")

        start = time.perf_counter()
        raw = bench_raw(args.scale)
        print(f"raw files ready in {time.perf_counter() - start:.1f} s (not measured): {raw}")
    raw_bytes = sum(f.stat().st_size for f in Path(raw).rglob("*") if f.is_file())
    child, peak_gb, cpu, out_bytes = measure(Path(raw), args.mode)
    r, seconds = child["result"], child["seconds"]
    rows = {name: t["rows"] for name, t in r["tables"].items()}
    print(f"raw:        {raw} ({raw_bytes / 1e9:.2f} GB, {len(r['files'])} files)")
    print(f"lines:      {r['input_lines']:,} ({r['rejected']:,} rejected), tables {rows}")
    print(f"wall:       {seconds:.2f} s  ({r['input_lines'] / seconds / 1e6:.1f} M lines/s)")
    print(f"CPU:        {cpu:.1f} s user+sys on {os.cpu_count()} cores (wall suffers from load)")
    print(f"peak RSS:   {peak_gb:.2f} GB")
    print(f"parquet:    {out_bytes / 2**20:.0f} MiB")
    print(
        f"full-scale goal: <= {GOAL_SECONDS:.0f} s and <= {GOAL_GB:.0f} GB "
        "(scale the wall time by 1 / scale to compare)"
    )


if __name__ == "__main__":
    main()
