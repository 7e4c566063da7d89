"""Full-scale top-k on a GPU: 480,189 users x 17,770 movies, k = 100, seen movies excluded.

    python benchmarks/gpu_recommend.py --device cuda

The seen CSR is random with the full set's shape (built with torch on the device
in seconds, see bench_train.random_interactions); a sample of users is checked
against the CPU path, which must agree exactly.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_train import random_interactions  # noqa: E402

from wmf.evaluation.topk import top_k  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--nnz", type=int, default=100_480_507)
    p.add_argument("--factors", type=int, nargs="+", default=[64, 128])
    p.add_argument("--batch", type=int, default=32_768)
    p.add_argument("--check-users", type=int, default=2_000)
    args = p.parse_args()

    seen = random_interactions(args.nnz, args.device)
    exclude = (seen.indptr, seen.indices)
    n_users, n_movies = seen.shape
    rng = np.random.default_rng(0)
    for d in args.factors:
        users = rng.normal(size=(n_users, d)).astype(np.float32)
        movies = rng.normal(size=(n_movies, d)).astype(np.float32)
        warm = users[:4096]
        top_k(warm, movies, 100, exclude=exclude, device=args.device, batch_size=args.batch)
        t0 = time.perf_counter()
        items, _ = top_k(users, movies, 100, exclude=exclude, device=args.device, batch_size=args.batch)
        seconds = time.perf_counter() - t0
        check = rng.choice(n_users, args.check_users, replace=False)
        cpu_items, _ = top_k(users, movies, 100, exclude=exclude, users=check)
        agree = float((cpu_items == items[check]).mean())
        print(
            f"device={args.device} factors={d} users={n_users:,} seen={seen.nnz:,} k=100: "
            f"{seconds:.2f} s, {n_users / seconds:,.0f} users/s, cpu agreement {agree:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
