"""Quality of the published model on a hidden test, beside a tuned peer and popularity.

    python benchmarks/bench_quality.py --scale 100k 0.1              # a 100k and a 10M set
    python benchmarks/bench_quality.py --scale 0.1 --trials 20       # the tune's time floor: 20 trials
    python benchmarks/bench_quality.py --scale 0.1 --no-tune --no-implicit --refit-iterations 1 2 3 10

For each generated set, 20% of every user's ratings are hidden first (the test);
the pipeline never sees them. On the rest ("visible") it runs as a user would:

- defaults: the index's default random holdout, train with the default options
  (evaluated on that holdout, then refit on all visible data), export's model;
- holdout none: the same with `--holdout none` (what the refit must equal);
- tuned: `wmf tune` on the visible data (validation carved from the index's
  training split), then the default run with the best options;
- implicit: implicit 0.7's ALS trained on all visible data, the best of a grid
  chosen on the test itself (an optimistic bound for it);
- popularity: the most-watched unseen movies.

Every model is ranked against the hidden test with all visible ratings excluded.
Printed: Recall@20 and NDCG@100 per model, seconds, and the floors of issue 8.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import BENCH_DIR, bench_raw, label, parse_scale, report  # noqa: E402

from wmf.config import IndexConfig, IngestConfig, TrainConfig, TuneConfig  # noqa: E402
from wmf.data.interactions import Interactions, load_seen, load_train  # noqa: E402
from wmf.evaluation.metrics import evaluate, evaluate_popularity  # noqa: E402

KS = (20, 100)
# implicit's grid, in its own units (an unwatched cell weighs 1, a watched one alpha).
IMPLICIT_REGS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
IMPLICIT_ALPHAS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
IMPLICIT_FACTORS = (32, 64, 128)


@dataclasses.dataclass(frozen=True)
class Split:
    """A generated set with a hidden test: the visible ratings as an ingest output, and the test."""

    visible: Path  # an ingest directory (ratings.parquet, movies.parquet)
    test: pl.DataFrame  # user_id, movie_id


def hidden_split(scale: float | str) -> Split:
    """Hide 20% of each user's ratings (the index's seeded random split), cached under .bench/."""
    from wmf.stages.index.build import build_index
    from wmf.stages.ingest.parse import ingest

    root = BENCH_DIR / f"quality-{label(scale)}"
    visible, test_path = root / "visible", root / "test.parquet"
    if not test_path.exists():
        full, index = root / "ingest", root / "split"
        for d in (full, index, visible):
            d.mkdir(parents=True, exist_ok=True)
        ingest(bench_raw(scale), full, IngestConfig(), progress=False)
        build_index(full, index, IndexConfig(holdout="random", split_seed=12345), progress=False)
        users = pl.read_parquet(index / "users.parquet").select("user_idx", "user_id")
        movies = pl.read_parquet(index / "movies.parquet").select("movie_idx", "movie_id")
        test = (
            pl.read_parquet(index / "holdout.parquet")
            .join(users, on="user_idx")
            .join(movies, on="movie_idx")
            .select("user_id", "movie_id")
        )
        ratings = pl.read_parquet(full / "ratings.parquet")
        ratings.join(test, on=["user_id", "movie_id"], how="anti").write_parquet(visible / "ratings.parquet")
        (visible / "movies.parquet").write_bytes((full / "movies.parquet").read_bytes())
        test.write_parquet(test_path)
    return Split(visible, pl.read_parquet(test_path))


def build(split: Split, config: IndexConfig, work: Path) -> Path:
    from wmf.stages.index.build import build_index

    out = work / f"index-{config.holdout}"
    if not (out / "seen.npz").exists():
        out.mkdir(parents=True, exist_ok=True)
        build_index(split.visible, out, config, progress=False)
    return out


def hidden_pairs(split: Split, index_dir: Path) -> tuple[Interactions, tuple[np.ndarray, np.ndarray]]:
    """The exclusion CSR (every visible rating) and the test pairs, in the index's numbering."""
    users = pl.read_parquet(index_dir / "users.parquet").select("user_idx", "user_id")
    movies = pl.read_parquet(index_dir / "movies.parquet").select("movie_idx", "movie_id")
    test = split.test.join(users, on="user_id").join(movies, on="movie_id").sort("user_idx", "movie_idx")
    indptr, indices = load_seen(index_dir)
    seen = Interactions(indptr, indices, np.ones(len(indices), np.int8), load_train(index_dir).shape)
    return seen, (test["user_idx"].to_numpy(), test["movie_idx"].to_numpy())


def scored(split: Split, index_dir: Path, user_factors: Any, movie_factors: Any) -> dict[str, float]:
    seen, test = hidden_pairs(split, index_dir)
    metrics = evaluate(user_factors, movie_factors, seen, test, KS)
    return {k: metrics[k] for k in ("recall@20", "ndcg@100")}


def pipeline_model(split: Split, index_dir: Path, config: TrainConfig, work: Path) -> tuple[dict, float]:
    """What `wmf train` publishes on this index, scored on the hidden test; and its seconds."""
    from wmf.model.factorization import MatrixFactorization
    from wmf.stages.train.fit import train

    out = Path(tempfile.mkdtemp(dir=work))
    started = time.perf_counter()
    summary = train(index_dir, out, config, progress=False)
    seconds = time.perf_counter() - started
    model = MatrixFactorization.load(out)
    metrics = scored(split, index_dir, model.user_factors, model.movie_factors)
    if summary["metrics"]:
        metrics["own_holdout_recall@20"] = summary["metrics"]["recall@20"]
    return metrics, seconds


def implicit_fit(index_dir: Path, factors: int, regularization: float, alpha: float) -> Any:
    import scipy.sparse
    import threadpoolctl
    from implicit.cpu.als import AlternatingLeastSquares

    threadpoolctl.threadpool_limits(1, "blas")
    train = load_train(index_dir)
    csr = scipy.sparse.csr_matrix(
        (np.ones(train.nnz, np.float32), train.indices, train.indptr), shape=train.shape
    )
    model = AlternatingLeastSquares(
        factors=factors, regularization=regularization, alpha=alpha, iterations=15, random_state=0
    )
    model.fit(csr, show_progress=False)
    return model


def implicit_best(split: Split, index_dir: Path) -> tuple[dict, dict, int]:
    """implicit's best on the test: (reg, alpha) at 64 factors, then the factors at that pair."""
    results: dict[tuple[int, float, float], dict] = {}

    def run(factors: int, reg: float, alpha: float) -> None:
        model = implicit_fit(index_dir, factors, reg, alpha)
        results[factors, reg, alpha] = scored(split, index_dir, model.user_factors, model.item_factors)

    for reg, alpha in itertools.product(IMPLICIT_REGS, IMPLICIT_ALPHAS):
        run(64, reg, alpha)
    _, reg, alpha = max(results, key=lambda k: results[k]["ndcg@100"])
    for factors in IMPLICIT_FACTORS:
        if (factors, reg, alpha) not in results:
            run(factors, reg, alpha)
    best = max(results, key=lambda k: results[k]["ndcg@100"])
    return results[best], dict(zip(("factors", "regularization", "alpha"), best, strict=True)), len(results)


def tuned(split: Split, index_dir: Path, trials: int, work: Path) -> tuple[dict, dict, float]:
    """A `wmf tune` of `trials` on the default index, then the default run with its best options."""
    from wmf import configfile
    from wmf.layout import Tune
    from wmf.stages.tune.search import tune

    out = Path(tempfile.mkdtemp(dir=work))
    started = time.perf_counter()
    tune(index_dir, out, TuneConfig(trials=trials), TrainConfig(), out / "study.journal", progress=False)
    minutes = (time.perf_counter() - started) / 60
    best = configfile.load(out / Tune.BEST)["train"]
    metrics, _ = pipeline_model(split, index_dir, dataclasses.replace(TrainConfig(), **best), work)
    return metrics, best, minutes


def bench(scale: float | str, trials: int, with_tune: bool, with_implicit: bool, refits: list[int]) -> None:
    started = time.perf_counter()
    split = hidden_split(scale)
    work = Path(tempfile.mkdtemp(dir=BENCH_DIR, prefix=f"quality-{label(scale)}-"))
    default_index = build(split, IndexConfig(), work)
    none_index = build(split, IndexConfig(holdout="none"), work)
    train = load_train(none_index)
    print(
        f"\n## {label(scale)}: {train.n_users:,} users, {train.n_movies:,} movies, "
        f"{train.nnz:,} visible interactions, "
        f"{split.test.height:,} hidden test pairs (data in {time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    rows: list[tuple[str, dict, str]] = []
    seen, test = hidden_pairs(split, none_index)
    rows.append(("popularity", evaluate_popularity(seen, test, KS), ""))
    defaults, seconds = pipeline_model(split, default_index, TrainConfig(), work)
    own = defaults.pop("own_holdout_recall@20")
    rows.append(
        ("wmf defaults (holdout random + refit)", defaults, f"train {seconds:.1f} s, own holdout {own:.4f}")
    )
    no_refit, seconds = pipeline_model(split, default_index, TrainConfig(refit=False), work)
    no_refit.pop("own_holdout_recall@20")
    rows.append(("wmf defaults, --no-refit", no_refit, f"train {seconds:.1f} s"))
    none, seconds = pipeline_model(split, none_index, TrainConfig(), work)
    rows.append(("wmf defaults, --holdout none", none, f"train {seconds:.1f} s"))
    for n in refits:
        metrics, seconds = pipeline_model(split, default_index, TrainConfig(refit_iterations=n), work)
        metrics.pop("own_holdout_recall@20")
        rows.append((f"wmf defaults, --refit-iterations {n}", metrics, f"train {seconds:.1f} s"))
    if with_tune:
        metrics, best, minutes = tuned(split, default_index, trials, work)
        metrics.pop("own_holdout_recall@20", None)
        rows.append((f"wmf tuned ({trials} trials)", metrics, f"{minutes:.1f} min; {best}"))
    if with_implicit:
        metrics, best, n = implicit_best(split, none_index)
        rows.append(("implicit 0.7, best of grid on the test", metrics, f"{n} fits; {best}"))

    print("| model | Recall@20 | NDCG@100 | notes |\n|---|---|---|---|")
    for name, metrics, note in rows:
        print(f"| {name} | {metrics['recall@20']:.4f} | {metrics['ndcg@100']:.4f} | {note} |")
    figures = {name: metrics for name, metrics, _ in rows}
    report(
        f"floors {label(scale)}",
        refit_minus_holdout_none=defaults["recall@20"] - none["recall@20"],
        **_floors(figures, defaults),
    )


def _floors(figures: dict[str, dict], defaults: dict) -> dict[str, float]:
    """Margins of issue 8's floors (>= 0 passes): defaults and tuned against implicit's best."""
    peer = next((m for name, m in figures.items() if name.startswith("implicit")), None)
    if peer is None:
        return {}
    margins = {f"defaults_vs_implicit_{k}": defaults[k] - peer[k] + 0.02 for k in ("recall@20", "ndcg@100")}
    tuned_metrics = next((m for name, m in figures.items() if name.startswith("wmf tuned")), None)
    if tuned_metrics is not None:
        for k in ("recall@20", "ndcg@100"):
            margins[f"tuned_vs_implicit_{k}"] = tuned_metrics[k] - peer[k] + 0.005
    return margins


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--scale", type=parse_scale, nargs="+", default=["100k", 0.1], help="shares of Netflix, or 100k"
    )
    p.add_argument(
        "--trials",
        type=int,
        default=0,
        help="trials of the tune (0: 100 on the 100k set, where a trial takes about a second, else 20)",
    )
    p.add_argument("--no-tune", dest="tune", action="store_false")
    p.add_argument("--no-implicit", dest="implicit", action="store_false")
    p.add_argument("--refit-iterations", type=int, nargs="*", default=[], help="also these refit lengths")
    args = p.parse_args()
    BENCH_DIR.mkdir(exist_ok=True)
    for scale in args.scale:
        trials = args.trials or (100 if scale == "100k" else 20)
        bench(scale, trials, args.tune, args.implicit, args.refit_iterations)


if __name__ == "__main__":
    main()
