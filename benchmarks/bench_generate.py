"""Time and memory of the synthetic data generator, and the shape of what it wrote.

Goal at scale 1 (100,480,507 ratings, ~2 GB of text, 2 cores): a few minutes, a few GB.

    python benchmarks/bench_generate.py --scale 1
    python benchmarks/bench_generate.py --scale 0.02 --seed 1

The output is kept as the cached raw folder of benchmarks.common.bench_raw (when that
folder does not exist yet), so later benchmarks reuse it instead of generating again.
"""

from __future__ import annotations

import argparse
import shutil
import time
import uuid

from common import BENCH_DIR, adopt, peak_rss_gb, raw_dir, report  # benchmarks/common.py, beside

from wmf.generate import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-keep", action="store_true", help="delete the output afterwards")
    args = parser.parse_args()

    tmp = BENCH_DIR / f".tmp-bench-generate-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    summary = generate(tmp, scale=args.scale, seed=args.seed)
    seconds = time.perf_counter() - start
    size_gb = sum(p.stat().st_size for p in tmp.iterdir()) / 1e9
    if args.no_keep:
        shutil.rmtree(tmp)
    else:
        adopt(tmp, raw_dir(args.scale, args.seed))

    report(
        "generate",
        scale=args.scale,
        seconds=seconds,
        ratings_per_s=summary["ratings"] / seconds,
        peak_rss_gb=peak_rss_gb(),
        text_gb=size_gb,
    )
    movie, user = summary["movie_ratings"], summary["user_ratings"]
    report(
        "shape",
        users=summary["users"],
        ratings=summary["ratings"],
        movies=summary["movies"],
        probe_pairs=summary["probe_pairs"],
        mean_rating=summary["mean_rating"],
        min_per_movie=movie["min"],
        median_per_movie=movie["median"],
        max_per_movie=movie["max"],
        median_per_user=user["median"],
        mean_per_user=user["mean"],
        max_per_user=user["max"],
    )


if __name__ == "__main__":
    main()
