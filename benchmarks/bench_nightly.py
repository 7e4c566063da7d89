"""A warm night against a cold one: train-stage seconds and quality on a hidden test.

    python benchmarks/bench_nightly.py --scale 0.1                     # issue 10's floor
    python benchmarks/bench_nightly.py --scale 0.1 --warm-iterations 1 2 3 5 --gap-days 1 7

The hidden test and the visible ratings are bench_quality's (20% of every user's
ratings hidden first). Last night keeps the visible ratings dated up to the last day
minus `gap` days (`--until`) and trains cold: that is the published model. Tonight
keeps every visible rating and trains once cold and once warm per `--warm-iterations`,
from last night's model (users and movies matched by id, new ones folded in). Each
train stage is timed whole (loading, sweeps, evaluation, refit, saving) and its model
scored against the hidden test, every visible rating excluded.
Floor (issue 10): warm train <= 1/3 of the cold one, Recall@20 and NDCG@100 within 0.005.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_quality import hidden_split, scored  # noqa: E402
from common import BENCH_DIR, label, parse_scale, report  # noqa: E402

from wmf.config import IndexConfig, TrainConfig  # noqa: E402
from wmf.model.factorization import MatrixFactorization  # noqa: E402
from wmf.stages.index.build import build_index  # noqa: E402
from wmf.stages.train.fit import train  # noqa: E402


def timed_train(index_dir: Path, out: Path, config: TrainConfig, warm_from: Path | None) -> float:
    out.mkdir(parents=True)
    started = time.perf_counter()
    train(index_dir, out, config, progress=False, warm_from=warm_from)
    return time.perf_counter() - started


def bench(scale: float | str, gap: int, warm_iterations: list[int]) -> None:
    split = hidden_split(scale)
    work = Path(tempfile.mkdtemp(dir=BENCH_DIR, prefix=f"nightly-{label(scale)}-"))
    last_day = pl.read_parquet(split.visible / "ratings.parquet", columns=["date"])["date"].max()
    until = (last_day - datetime.timedelta(days=gap)).isoformat()
    last_night, tonight = work / "index-last", work / "index-tonight"
    for out, config in ((last_night, IndexConfig(until=until)), (tonight, IndexConfig())):
        out.mkdir()
        build_index(split.visible, out, config, progress=False)
    published = work / "train-last"
    timed_train(last_night, published, TrainConfig(), None)
    n_last, n_now = (pl.read_parquet(d / "users.parquet").height for d in (last_night, tonight))
    print(
        f"\n## {label(scale)}: last night keeps ratings up to {until} ({n_last:,} users), tonight "
        f"{gap} day(s) more ({n_now:,} users)"
    )
    rows = []
    cold_seconds = timed_train(tonight, work / "train-cold", TrainConfig(), None)
    cold = scored_model(split, tonight, work / "train-cold")
    rows.append(("cold (15 + 5 refit sweeps)", cold_seconds, cold))
    for n in warm_iterations:
        config = dataclasses.replace(TrainConfig(), warm_iterations=n)
        seconds = timed_train(tonight, work / f"train-warm-{n}", config, published)
        rows.append((f"warm, --warm-iterations {n} ({n} + {n} sweeps)", seconds, scored_model(
            split, tonight, work / f"train-warm-{n}")))  # fmt: skip
    print("| train | seconds | share of cold | Recall@20 | NDCG@100 |\n|---|---|---|---|---|")
    for name, seconds, metrics in rows:
        print(
            f"| {name} | {seconds:.1f} | {seconds / cold_seconds:.2f} | "
            f"{metrics['recall@20']:.4f} | {metrics['ndcg@100']:.4f} |"
        )
    for name, seconds, metrics in rows[1:]:
        report(
            f"floors {label(scale)} gap {gap} {name.split(' (')[0]}",
            time_share_margin=1 / 3 - seconds / cold_seconds,
            **{f"{k}_margin": 0.005 - abs(metrics[k] - cold[k]) for k in ("recall@20", "ndcg@100")},
        )


def scored_model(split, index_dir: Path, train_dir: Path) -> dict[str, float]:
    model = MatrixFactorization.load(train_dir)
    return scored(split, index_dir, model.user_factors, model.movie_factors)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scale", type=parse_scale, nargs="+", default=[0.1], help="shares of Netflix, or 100k")
    p.add_argument("--gap-days", type=int, nargs="+", default=[1], help="days of ratings between nights")
    p.add_argument("--warm-iterations", type=int, nargs="+", default=[TrainConfig().warm_iterations])
    args = p.parse_args()
    BENCH_DIR.mkdir(exist_ok=True)
    for scale in args.scale:
        for gap in args.gap_days:
            bench(scale, gap, args.warm_iterations)


if __name__ == "__main__":
    main()
