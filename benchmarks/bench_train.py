"""Training speed and quality: ours vs implicit 0.7.3 in the same run, plus a defaults sweep.

    python benchmarks/bench_train.py --scale 0.1                  # ~10M ratings, d = 64 and 128
    python benchmarks/bench_train.py --synthetic-nnz 2000000      # planted data, no pipeline
    python benchmarks/bench_train.py --scale 0.02 --sweep         # markdown table for defaults
    python benchmarks/bench_train.py --scale 1 --stage             # the train stage: fit, evaluation, refit

Each model is fitted in a fresh child process (spawn), so "peak RSS" is that
model's own (data loading included). Seconds per iteration are the median of
the per-iteration solve times (ours: the ALS sweep; implicit: its fit_callback),
without loss or evaluation. Both models are scored by wmf.evaluation.metrics.evaluate.
Weights map as: implicit alpha = 1 / w0, implicit regularization = ours / w0.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))

from common import bench_raw  # noqa: E402

from wmf.config import IndexConfig, IngestConfig, TrainConfig  # noqa: E402

BENCH_DIR = ROOT / ".bench"
KS = (20, 100)


# -- data -------------------------------------------------------------------------------
def pipeline_index(scale: float) -> Path:
    """Generated ratings -> ingest -> index with a random holdout, cached under .bench/."""
    from wmf.stages.index.build import build_index
    from wmf.stages.ingest.parse import ingest

    index_dir = BENCH_DIR / f"train-index-scale{scale:g}"
    if (index_dir / "train.npz").exists():
        return index_dir
    raw = bench_raw(scale)
    ingest_dir = BENCH_DIR / f"ingest-scale{scale:g}"
    if not (ingest_dir / "movies.parquet").exists():
        ingest_dir.mkdir(parents=True, exist_ok=True)
        ingest(raw, ingest_dir, IngestConfig())
    index_dir.mkdir(parents=True, exist_ok=True)
    build_index(ingest_dir, index_dir, IndexConfig(holdout="random"))
    return index_dir


def planted_index(nnz: int, seed: int = 0) -> Path:
    """A planted taste-cluster dataset written as an index dir (train.npz + holdout.parquet)."""
    import polars as pl

    index_dir = BENCH_DIR / f"train-planted-{nnz}"
    if (index_dir / "train.npz").exists():
        return index_dir
    rng = np.random.default_rng(seed)
    n_movies, per_user, clusters = 17_770, 200, 64
    n_users = max(1, nnz // per_user)
    popularity = rng.lognormal(0, 1.5, n_movies)
    taste = rng.normal(size=(clusters, 16)) @ rng.normal(size=(16, n_movies)) / 4
    prob = popularity * np.exp(taste)
    cdf = np.cumsum(prob, axis=1)
    cdf /= cdf[:, -1:]
    cluster = rng.integers(0, clusters, n_users)
    counts = np.clip(rng.lognormal(np.log(per_user) - 0.5, 1.0, n_users).astype(int), 2, 4000)
    rows = np.repeat(np.arange(n_users), counts)
    cols = np.empty(len(rows), np.int64)
    for c in range(clusters):
        sel = cluster[rows] == c
        cols[sel] = np.searchsorted(cdf[c], rng.random(sel.sum()))
    key = np.unique(rows * n_movies + np.minimum(cols, n_movies - 1))
    rows, cols = key // n_movies, key % n_movies
    held = rng.random(len(rows)) < 0.2
    held &= np.bincount(rows, minlength=n_users)[rows] >= 5
    index_dir.mkdir(parents=True, exist_ok=True)
    tr_rows, tr_cols = rows[~held], cols[~held]
    indptr = np.zeros(n_users + 1, np.int64)
    indptr[1:] = np.cumsum(np.bincount(tr_rows, minlength=n_users))
    np.savez(
        index_dir / "train.npz",
        indptr=indptr,
        indices=tr_cols.astype(np.int32),
        ratings=np.full(len(tr_cols), 5, np.int8),
        shape=np.array([n_users, n_movies], np.int64),
    )
    pl.DataFrame(
        {"user_idx": rows[held].astype(np.int32), "movie_idx": cols[held].astype(np.int32)}
    ).write_parquet(index_dir / "holdout.parquet")
    return index_dir


def random_interactions(nnz: int, device: str, seed: int = 0, match_nnz: bool = False) -> Any:
    """Random CSR with the full set's shape statistics (timing only: no taste structure),
    built with torch on `device` so that 100M ratings take seconds.

    Repeated draws of a popular movie merge, so ~12% fewer than `nnz` remain at full scale;
    `match_nnz` draws again, more per user, until within 0.2% of `nnz` (at most 3 draws)."""
    import torch

    n_movies = 17_770
    n_users = max(1, round(nnz * 480_189 / 100_480_507))
    g = torch.Generator(device).manual_seed(seed)
    activity = torch.empty(n_users, device=device).log_normal_(0.0, 1.25, generator=g)
    popularity = torch.empty(n_movies, device=device).log_normal_(0.0, 1.5, generator=g)
    wanted = float(nnz)
    for _ in range(3 if match_nnz else 1):
        counts = (activity * wanted / activity.sum()).long().clamp(1, n_movies // 2)
        rows = torch.repeat_interleave(torch.arange(n_users, device=device), counts)
        cols = torch.multinomial(popularity, len(rows), replacement=True, generator=g)
        key = torch.unique(rows * n_movies + cols)
        if abs(len(key) - nnz) <= 0.002 * nnz:
            break
        wanted *= nnz / len(key)
    rows, cols = key // n_movies, key % n_movies
    indptr = torch.zeros(n_users + 1, dtype=torch.int64, device=device)
    indptr[1:] = torch.cumsum(torch.bincount(rows, minlength=n_users), 0)
    # a plain namespace: wmf.stages.index.build needs polars, which GPU images may lack
    return SimpleNamespace(
        nnz=len(cols),
        indptr=indptr.cpu().numpy(),
        indices=cols.int().cpu().numpy(),
        ratings=np.full(len(cols), 5, np.int8),
        shape=(n_users, n_movies),
    )


def device_timing(nnz: int, base: TrainConfig, factors: list[int], device: str) -> None:
    """ALS seconds per iteration on `device` (e.g. the CUDA floor at full scale, d = 128)."""
    import torch

    from wmf.model.factorization import MatrixFactorization

    t0 = time.perf_counter()
    train = random_interactions(nnz, device)
    print(f"random data {train.shape} nnz={train.nnz:,} in {time.perf_counter() - t0:.1f} s")
    for d in factors:
        config = dataclasses.replace(base, factors=d, device=device)
        model = MatrixFactorization(config).fit(train, progress=False)
        seconds = [r["seconds"] for r in model.history]
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
        print(
            f"device={device} factors={d} s/iter median={statistics.median(seconds[1:] or seconds):.3f}"
            f" first={seconds[0]:.3f} loss={[round(r['loss'], 7) for r in model.history]}"
            f" peak_gpu_gb={peak:.1f}",
            flush=True,
        )


# -- one fit per child process ------------------------------------------------------------
def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def fit_ours(index_dir: Path, config: TrainConfig) -> dict[str, Any]:
    from wmf.data.interactions import load_holdout, load_train
    from wmf.evaluation.metrics import evaluate
    from wmf.model.factorization import MatrixFactorization

    train, holdout = load_train(index_dir), load_holdout(index_dir)
    model = MatrixFactorization(config).fit(train, progress=False)
    seconds = [r["seconds"] for r in model.history]
    metrics = evaluate(model.user_factors, model.movie_factors, train, holdout, KS)
    return {
        "s_per_iter": statistics.median(seconds[1:] or seconds),  # first includes JIT load
        "loss": model.history[-1]["loss"],
        "peak_rss_gb": _peak_rss_gb(),
        **{k: float(metrics[k]) for k in ("recall@20", "ndcg@100")},
    }


def fit_implicit(index_dir: Path, config: TrainConfig, threads: int) -> dict[str, Any]:
    import scipy.sparse
    import threadpoolctl
    from implicit.cpu.als import AlternatingLeastSquares

    from wmf.data.interactions import load_holdout, load_train
    from wmf.evaluation.metrics import evaluate

    threadpoolctl.threadpool_limits(1, "blas")
    train, holdout = load_train(index_dir), load_holdout(index_dir)
    ones = np.ones(train.nnz, np.float32)
    csr = scipy.sparse.csr_matrix((ones, train.indices, train.indptr), shape=train.shape)
    w0 = config.unobserved_weight
    model = AlternatingLeastSquares(
        factors=config.factors,
        regularization=config.regularization / w0,
        alpha=1.0 / w0,
        iterations=config.iterations,
        use_cg=True,
        calculate_training_loss=False,
        num_threads=threads,
        random_state=config.seed,
    )
    seconds: list[float] = []
    model.fit(csr, show_progress=False, callback=lambda it, elapsed, loss: seconds.append(elapsed))
    metrics = evaluate(model.user_factors, model.item_factors, train, holdout, KS)
    return {
        "s_per_iter": statistics.median(seconds[1:] or seconds),
        "loss": None,
        "peak_rss_gb": _peak_rss_gb(),
        **{k: float(metrics[k]) for k in ("recall@20", "ndcg@100")},
    }


def in_child(fn, *args) -> dict[str, Any]:
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# -- modes --------------------------------------------------------------------------------
def compare(index_dir: Path, base: TrainConfig, factors: list[int], threads: int) -> None:
    train = np.load(index_dir / "train.npz")
    print(f"data: {index_dir} shape={tuple(train['shape'])} nnz={len(train['indices']):,}")
    print(f"w0={base.unobserved_weight} reg={base.regularization} iterations={base.iterations}")
    print("| model | factors | s/iter | peak RSS GB | recall@20 | ndcg@100 |")
    print("|---|---|---|---|---|---|")
    for d in factors:
        config = dataclasses.replace(base, factors=d)
        for name, fn, args in (
            ("wmf", fit_ours, (index_dir, config)),
            ("implicit", fit_implicit, (index_dir, config, threads)),
        ):
            r = in_child(fn, *args)
            print(
                f"| {name} | {d} | {r['s_per_iter']:.3f} | {r['peak_rss_gb']:.2f} "
                f"| {r['recall@20']:.4f} | {r['ndcg@100']:.4f} |",
                flush=True,
            )


def sweep(index_dir: Path, base: TrainConfig, factors: list[int], regs: list[float]) -> None:
    print("| factors | w0 | regularization | recall@20 | ndcg@100 | s/iter |")
    print("|---|---|---|---|---|---|")
    for d in factors:
        for w0 in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2):
            for reg in regs:
                config = dataclasses.replace(base, factors=d, unobserved_weight=w0, regularization=reg)
                r = fit_ours(index_dir, config)
                print(
                    f"| {d} | {w0} | {reg} | {r['recall@20']:.4f} | {r['ndcg@100']:.4f} "
                    f"| {r['s_per_iter']:.3f} |",
                    flush=True,
                )


def stage(index_dir: Path, base: TrainConfig) -> None:
    """The train stage as `wmf train` runs it, its seconds split into fit, evaluation and refit."""
    import tempfile

    from common import peak_rss_gb

    from wmf.stages.train.fit import train
    from wmf.store import read_json

    out = Path(tempfile.mkdtemp(dir=BENCH_DIR))
    started = time.perf_counter()
    train(index_dir, out, base, progress=False)
    total = time.perf_counter() - started
    history = read_json(out / "history.json")
    fit = sum(r["seconds"] for r in history if r["phase"] == "train")
    refit = sum(r["seconds"] for r in history if r["phase"] == "refit")
    print(
        f"train stage: total={total:.1f} s  fit sweeps={fit:.1f} s  refit sweeps={refit:.1f} s "
        f"({sum(r['phase'] == 'refit' for r in history)})  rest (loading, losses, evaluation, merge)="
        f"{total - fit - refit:.1f} s  peak_rss={peak_rss_gb():.2f} GB",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scale", type=float, default=0.1, help="generated data scale (1 = full)")
    p.add_argument("--synthetic-nnz", type=int, default=0, help="planted data of ~N ratings")
    p.add_argument("--factors", type=int, nargs="+", default=[64, 128])
    p.add_argument("--iterations", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--w0", type=float, default=TrainConfig.unobserved_weight)
    p.add_argument("--regularization", type=float, default=TrainConfig.regularization)
    p.add_argument(
        "--device-timing", default="", help="e.g. cuda: time ALS there on random --synthetic-nnz data"
    )
    p.add_argument("--sweep", action="store_true", help="grid over w0/regularization/factors")
    p.add_argument("--sweep-regs", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    p.add_argument("--stage", action="store_true", help="time the train stage with its defaults (and refit)")
    args = p.parse_args()

    if args.device_timing:
        base = TrainConfig(iterations=args.iterations, unobserved_weight=args.w0)
        device_timing(args.synthetic_nnz, base, args.factors, args.device_timing)
        return
    t0 = time.perf_counter()
    index_dir = planted_index(args.synthetic_nnz) if args.synthetic_nnz else pipeline_index(args.scale)
    print(f"data ready in {time.perf_counter() - t0:.1f} s", flush=True)
    base = TrainConfig(
        iterations=args.iterations,
        unobserved_weight=args.w0,
        regularization=args.regularization,
        device="cpu",
    )
    if args.stage:
        stage(index_dir, TrainConfig(device="cpu"))
    elif args.sweep:
        sweep(index_dir, base, args.factors, args.sweep_regs)
    else:
        compare(index_dir, base, args.factors, args.threads)


if __name__ == "__main__":
    main()
