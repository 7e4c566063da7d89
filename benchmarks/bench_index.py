"""Wall time and peak RSS of build_index (goal at full scale: <= 60 s, <= 8 GB).

    python benchmarks/bench_index.py --scale 1            # bench_raw(scale) -> ingest -> index
    python benchmarks/bench_index.py --ingest DIR         # an existing ingest output
    python benchmarks/bench_index.py --synthetic 100480507  # ratings.parquet straight from numpy

build_index runs in a fresh child process, so the figures count neither the data
preparation nor its memory: peak RSS is the child's own high-water mark (wait4).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

FULL_RATINGS = 100_480_507
FULL_USERS = 480_189
N_MOVIES = 17_770
MAX_CUSTOMER_ID = 2_649_429
RATING_P = (0.046, 0.101, 0.287, 0.336, 0.230)
FIRST_DAY, LAST_DAY = date(1999, 11, 11), date(2005, 12, 31)


def write_synthetic(out: Path, n: int, seed: int = 0) -> int:
    """An ingest-like output of n unique (movie, user) ratings, movie-major like the raw files.

    Heavy tails as in the real data: lognormal user activity and movie popularity,
    sparse customer ids. Returns the number of rows written.
    """
    rng = np.random.default_rng(seed)
    n_users = max(1, round(FULL_USERS * n / FULL_RATINGS))
    n_movies = min(N_MOVIES, n)
    popularity = rng.lognormal(0.0, 1.3, n_movies)
    activity = rng.lognormal(0.0, 1.2, n_users)
    # nobody can watch more than every movie; a quarter keeps duplicate draws rare
    activity = np.minimum(activity, activity.sum() / n * n_movies / 4)
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n:  # top up what duplicates took away
        draws = int((n - len(keys)) * 1.2) + 1
        users = rng.choice(n_users, draws, p=activity / activity.sum()).astype(np.int64)
        movies = rng.choice(n_movies, draws, p=popularity / popularity.sum())
        keys = np.sort(np.concatenate((keys, movies * n_users + users)))
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]  # np.unique hashes: slow
    keys = np.delete(keys, rng.choice(len(keys), len(keys) - n, replace=False))
    user_ids = np.sort(rng.choice(MAX_CUSTOMER_ID, n_users, replace=False) + 1).astype(np.int32)
    rng.shuffle(user_ids)
    first_day = (FIRST_DAY - date(1970, 1, 1)).days
    n_days = (LAST_DAY - FIRST_DAY).days + 1
    pl.DataFrame(
        {
            "movie_id": (keys // n_users + 1).astype(np.int32),
            "user_id": user_ids[keys % n_users],
            "rating": rng.choice(np.arange(1, 6, dtype=np.int8), n, p=RATING_P),
            "date": rng.integers(first_day, first_day + n_days, n, dtype=np.int32),
        }
    ).with_columns(pl.col("date").cast(pl.Date)).write_parquet(out / "ratings.parquet", compression="zstd")
    ids = np.arange(1, N_MOVIES + 1, dtype=np.int32)
    pl.DataFrame(
        {"movie_id": ids, "year": (1950 + ids % 56).astype(np.int16), "title": [f"Movie {i}" for i in ids]}
    ).write_parquet(out / "movies.parquet", compression="zstd")
    return n


def ingest_scale(out: Path, scale: float) -> None:
    """The colleagues' path: synthetic raw files, then the ingest stage."""
    try:
        from common import bench_raw  # benchmarks/common.py, beside this script

        from wmf.config import IngestConfig
        from wmf.stages.ingest.parse import ingest
    except ImportError as e:
        sys.exit(f"--scale needs benchmarks/common.py and wmf/stages/ingest/ ({e}); use --synthetic N")
    ingest(bench_raw(scale), out, IngestConfig(), progress=False)


def run_child(ingest_dir: Path, out: Path, config: dict) -> None:
    """Inside the measured process: time build_index only, print its result as JSON."""
    from wmf.config import IndexConfig
    from wmf.stages.index.build import build_index

    start = time.perf_counter()
    result = build_index(ingest_dir, out, IndexConfig(**config), progress=False)
    print(json.dumps({"seconds": time.perf_counter() - start, "result": result}))


def measure(ingest_dir: Path, config: dict) -> tuple[dict, float, float]:
    """Run build_index in a fresh interpreter; return its output, peak RSS (GB) and CPU seconds.

    The CPU seconds (whole child, imports included) tell a busy shared machine from a slow build.
    """
    with tempfile.TemporaryDirectory(prefix="bench-index-out-") as out:
        cmd = [sys.executable, __file__, "--child", str(ingest_dir), out, json.dumps(config)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            sys.exit(f"build_index failed (status {status})")
        cpu = usage.ru_utime + usage.ru_stime
        return json.loads(stdout), usage.ru_maxrss / 1024**2, cpu  # ru_maxrss is in KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--scale", type=float, default=1.0, help="bench_raw(scale) through ingest")
    source.add_argument("--ingest", type=Path, help="an existing ingest output directory")
    source.add_argument("--synthetic", type=int, metavar="N", help="write N ratings with numpy")
    p.add_argument("--holdout", default="random", choices=("none", "random", "temporal", "probe"))
    p.add_argument("--min-user-ratings", type=int, default=1)
    p.add_argument("--min-movie-ratings", type=int, default=1)
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        run_child(Path(args.child[0]), Path(args.child[1]), json.loads(args.child[2]))
        return
    config = {
        "holdout": args.holdout,
        "min_user_ratings": args.min_user_ratings,
        "min_movie_ratings": args.min_movie_ratings,
    }
    with tempfile.TemporaryDirectory(prefix="bench-index-in-") as tmp:
        ingest_dir = args.ingest
        if ingest_dir is None:
            ingest_dir = Path(tmp)
            start = time.perf_counter()
            if args.synthetic is not None:
                write_synthetic(ingest_dir, args.synthetic)
            else:
                ingest_scale(ingest_dir, args.scale)
            print(f"prepared input in {time.perf_counter() - start:.1f} s (not measured)")
        child, peak_gb, cpu = measure(ingest_dir, config)
    r = child["result"]
    print(
        f"input: {r['n_ratings_in']:,} ratings -> {r['n_users']:,} users x {r['n_movies']:,} movies, "
        f"train {r['n_train']:,}, holdout {r['n_holdout']:,} ({json.dumps(config)})"
    )
    print(
        f"build_index: {child['seconds']:.1f} s wall, {peak_gb:.2f} GB peak RSS (goal: 60 s, 8 GB); "
        f"child process {cpu:.1f} s CPU, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
