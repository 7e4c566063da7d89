"""Time and memory of the synthetic data generator, the shape of what it wrote, and how hard it is.

Goal at scale 1 (100,480,507 ratings, ~2 GB of text, 2 cores): a few minutes, a few GB.

    python benchmarks/bench_generate.py --scale 1
    python benchmarks/bench_generate.py --scale 0.02 --seed 1
    python benchmarks/bench_generate.py --scale 0.1 --difficulty          # the calibration (~45 min, 2 cores)
    python benchmarks/bench_generate.py --scale 0.02 --difficulty --factors 64 --w0 0.1 0.3

--difficulty runs what the pipeline's defaults would be chosen on: ingest, the index
stage's default split (20% random per user) and 15-iteration ALS over a grid of
factors x unobserved weight x regularization, with and without
scale_regularization; it prints every fit, then the best Recall@20 (its NDCG@100 and
settings) beside the popularity baseline. The generator is calibrated so that at
scale 0.1 the best is ~0.31 and popularity ~half of it, as on the real Netflix data (0.316).

The output is kept as the cached raw folder of benchmarks.common.bench_raw (when that
folder does not exist yet), so later benchmarks reuse it instead of generating again.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from common import BENCH_DIR, adopt, peak_rss_gb, raw_dir, report  # benchmarks/common.py, beside

from wmf.data.generate import generate

FACTORS = (32, 64, 128)
UNOBSERVED_WEIGHTS = (0.02, 0.05, 0.1, 0.3, 1.0)
REGULARIZATIONS = (0.1, 1.0, 10.0, 100.0)


def difficulty(
    raw: Path, factors: list[int], w0s: list[float], regs: list[float], iterations: int
) -> tuple[dict, dict]:
    """The grid's best fit (by Recall@20) and the popularity baseline on `raw`.

    Each fit is reported as it ends, so a long grid shows its progress.
    """
    from wmf.config import IndexConfig, IngestConfig, TrainConfig
    from wmf.data.interactions import load_holdout, load_train
    from wmf.model.factorization import MatrixFactorization
    from wmf.stages.index.build import build_index
    from wmf.stages.ingest.parse import ingest

    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as work:
        ingest_dir, index_dir = Path(work) / "ingest", Path(work) / "index"
        ingest_dir.mkdir()
        ingest(raw, ingest_dir, IngestConfig(), progress=False)
        build_index(ingest_dir, index_dir, IndexConfig(), progress=False)
        train, holdout = load_train(index_dir), load_holdout(index_dir)
    best: dict = {}
    for d, w0, reg, scaled in itertools.product(factors, w0s, regs, (False, True)):
        config = TrainConfig(
            factors=d,
            iterations=iterations,
            unobserved_weight=w0,
            regularization=reg,
            scale_regularization=scaled,
            device="cpu",
        )
        model = MatrixFactorization(config).fit(train, holdout=holdout, progress=False)
        fit = {
            "factors": d,
            "w0": w0,
            "regularization": reg,
            "scale_regularization": scaled,
            "recall@20": model.metrics["recall@20"],
            "ndcg@100": model.metrics["ndcg@100"],
        }
        report("fit", **fit)
        if fit["recall@20"] > best.get("recall@20", -1.0):
            best = fit
    popularity = {k: model.popularity[k] for k in ("recall@20", "ndcg@100")}
    return best, popularity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-keep", action="store_true", help="delete the output afterwards")
    parser.add_argument("--difficulty", action="store_true", help="ALS grid best vs popularity")
    parser.add_argument("--factors", type=int, nargs="+", default=list(FACTORS))
    parser.add_argument("--w0", type=float, nargs="+", default=list(UNOBSERVED_WEIGHTS))
    parser.add_argument("--regularization", type=float, nargs="+", default=list(REGULARIZATIONS))
    parser.add_argument("--iterations", type=int, default=15)
    args = parser.parse_args()

    BENCH_DIR.mkdir(exist_ok=True)
    tmp = BENCH_DIR / f".tmp-bench-generate-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    summary = generate(tmp, scale=args.scale, seed=args.seed)
    seconds = time.perf_counter() - start
    rss_gb = peak_rss_gb()
    size_gb = sum(p.stat().st_size for p in tmp.iterdir()) / 1e9

    report(
        "generate",
        scale=args.scale,
        seconds=seconds,
        ratings_per_s=summary["ratings"] / seconds,
        peak_rss_gb=rss_gb,
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
    if args.difficulty:
        best, popularity = difficulty(tmp, args.factors, args.w0, args.regularization, args.iterations)
        report(
            "difficulty",
            scale=args.scale,
            best_recall_at_20=best["recall@20"],
            best_ndcg_at_100=best["ndcg@100"],
            factors=best["factors"],
            w0=best["w0"],
            regularization=best["regularization"],
            scale_regularization=best["scale_regularization"],
            popularity_recall_at_20=popularity["recall@20"],
            popularity_ndcg_at_100=popularity["ndcg@100"],
            popularity_share=popularity["recall@20"] / best["recall@20"],
        )
    if args.no_keep:
        shutil.rmtree(tmp)
    else:
        adopt(tmp, raw_dir(args.scale, args.seed))


if __name__ == "__main__":
    main()
