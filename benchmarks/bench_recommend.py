"""Top-100 of every user, seen movies excluded: wmf's top_k against implicit's recommend.

Goal at full scale (480,189 users x 17,770 movies, d = 64, ~100 M seen, 2 cores):
no slower than implicit (~22 s) and peak RSS <= 6 GB.

    python benchmarks/bench_recommend.py                  # full-scale-shaped random factors and seen CSR
    python benchmarks/bench_recommend.py --users 50000    # smaller (seen per user unchanged)
    python benchmarks/bench_recommend.py --index DIR      # the seen CSR of an index output

Both run on the same factors and CSR in one process; each one's peak RSS is the
process high-water mark after resetting it (/proc/self/clear_refs), so it
includes the shared inputs. The overlap of the two top-100 lists is printed as
a sanity check (near-ties may order differently, so ~1.0, not exactly).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.sparse
import threadpoolctl
import torch

from wmf.evaluation.topk import top_k

FULL_USERS = 480_189
N_MOVIES = 17_770
FULL_SEEN = 100_480_507


def random_seen(n_users: int, n_items: int, nnz: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """User-major CSR with heavy-tailed user activity and movie popularity, no duplicates."""
    rng = np.random.default_rng(seed)
    popularity = rng.lognormal(0.0, 1.3, n_items)
    cdf = np.cumsum(popularity / popularity.sum())
    activity = np.cumsum(rng.lognormal(0.0, 1.2, n_users))
    draws = int(nnz * 1.1)
    users = np.minimum(np.searchsorted(activity / activity[-1], rng.random(draws)), n_users - 1)
    items = np.minimum(np.searchsorted(cdf, rng.random(draws)), n_items - 1)
    keys = np.unique(users.astype(np.int64) * n_items + items)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // n_items, minlength=n_users), out=indptr[1:])
    return indptr, (keys % n_items).astype(np.int32)


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_ours(users, items, seen, k, batch_size, device) -> np.ndarray:
    return top_k(users, items, k, exclude=seen, batch_size=batch_size, device=device)[0]


def run_implicit(users, items, seen, k, batch_size) -> np.ndarray:
    from implicit.cpu.als import AlternatingLeastSquares

    csr = scipy.sparse.csr_matrix(
        (np.ones(len(seen[1]), np.float32), seen[1], seen[0]), (len(users), len(items))
    )
    out = np.empty((len(users), k), dtype=np.int32)
    with threadpoolctl.threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=users.shape[1])
        model.user_factors, model.item_factors = users, items
        for start in range(0, len(users), batch_size):
            ids = np.arange(start, min(start + batch_size, len(users)))
            out[ids] = model.recommend(ids, csr[ids], N=k, filter_already_liked_items=True)[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=FULL_USERS)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--index", type=Path, help="use the seen CSR (and shape) of this index output")
    parser.add_argument("--batch", type=int, default=256, help="users per batch of wmf's top_k")
    parser.add_argument("--implicit-batch", type=int, default=50_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-implicit", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    if args.index:
        from wmf.data.interactions import load_train

        train = load_train(args.index)
        seen = (train.indptr, train.indices)
        n_users, n_items = train.n_users, train.n_movies
    else:
        n_users, n_items = args.users, N_MOVIES
        seen = random_seen(n_users, n_items, round(FULL_SEEN * n_users / FULL_USERS))
    rng = np.random.default_rng(1)
    users = (rng.standard_normal((n_users, args.factors), dtype=np.float32) * 0.1).astype(np.float32)
    items = (rng.standard_normal((n_items, args.factors), dtype=np.float32) * 0.1).astype(np.float32)
    print(
        f"{n_users:,} users x {n_items:,} movies, d={args.factors}, k={args.k}, {len(seen[1]):,} seen "
        f"(prepared in {time.perf_counter() - t0:.1f} s); torch threads {torch.get_num_threads()}"
    )
    runs = {"wmf top_k": lambda: run_ours(users, items, seen, args.k, args.batch, args.device)}
    if not args.skip_implicit:
        runs["implicit recommend"] = lambda: run_implicit(users, items, seen, args.k, args.implicit_batch)
    results = {}
    for name, run in runs.items():
        reset_peak_rss()
        t = time.perf_counter()
        results[name] = run()
        seconds = time.perf_counter() - t
        rate = n_users / seconds
        print(f"{name:20s} {seconds:8.2f} s  {rate:12,.0f} users/s  peak RSS {peak_rss_gb():.2f} GB")
    if len(results) == 2:
        ours, theirs = results.values()
        sample = slice(0, min(n_users, 2000))
        overlap = np.mean(
            [len(np.intersect1d(a, b)) / args.k for a, b in zip(ours[sample], theirs[sample], strict=True)]
        )
        print(f"top-{args.k} overlap with implicit on the first {sample.stop} users: {overlap:.4f}")


if __name__ == "__main__":
    main()
