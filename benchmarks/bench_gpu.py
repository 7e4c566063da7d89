"""The GPU check's benchmark: the default model (ALS) trained, and top-100 scored for every user,
at the full Netflix shape, on the device, beside yardsticks measured in the same run.

    python benchmarks/bench_gpu.py              # CUDA: 480,189 x 17,770, ~100.5M interactions
    python benchmarks/bench_gpu.py --dry        # tiny, on the CPU: checks that the script runs

The interactions come from bench_train.random_interactions (lognormal user activity and
movie popularity, drawn with torch on the device), topped up to --nnz distinct ones. One
line per figure (common.report):
- yardstick: the sparse products an ALS sweep is made of, each alone on the same matrix:
  sampled_addmm (x_u . y_m on every interaction) and sparse.mm (CSR times factors), users
  then movies; a CG sweep runs each (1 + cg_steps) times, so `sweep_floor_s` is that many
  of them. Beside it the dense product of one scoring batch (users x all movies).
- train: MatrixFactorization with the default TrainConfig but the device (and --factors
  past the first): seconds per sweep (median without the first, and the first), the sweeps'
  sum, the fit's wall seconds (the matrix's upload, losses included), peak GPU memory.
- score: top-k (ExportConfig's k and batch) for every user, seen movies excluded, as the
  export scores; a sample of users checked against the CPU path (exact agreement expected).
- agree: the CPU path (numba) and the device path fitted on a small matrix of the same
  shape statistics: loss curves and factors compared (the CUDA test's rtol is 1e-4).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_train import random_interactions  # noqa: E402
from common import report  # noqa: E402

from wmf.config import ExportConfig, TrainConfig  # noqa: E402
from wmf.evaluation.topk import top_k  # noqa: E402
from wmf.model.factorization import MatrixFactorization  # noqa: E402
from wmf.model.gpu import TorchOps  # noqa: E402

FULL_NNZ = 100_480_507
warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.device(device).type == "cuda" else float("nan")


def timed(fn: Callable[[], Any], device: str, repeat: int = 7) -> float:
    """Median seconds of `fn` after a warm-up, the device's work waited for."""
    fn()
    sync(device)
    seconds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(device)
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds)


def yardstick(
    train: Any, config: TrainConfig, factors: list[int], device: str, batch: int
) -> dict[int, float]:
    """The sparse products of a sweep, each timed alone; returns the sweep floor per factors."""
    ops = TorchOps(train, config.alpha, config.unobserved_weight, device)
    n_users, n_movies = ops.n_users, ops.n_movies
    g = torch.Generator(device).manual_seed(1)
    floors = {}
    for d in factors:
        U = torch.randn(n_users, d, device=device, generator=g) * 0.1
        V = torch.randn(n_movies, d, device=device, generator=g) * 0.1
        parts = {}
        for side, X, Y in (("users", U, V), ("movies", V, U)):
            conf = ops.csr(side)[2]
            parts[f"sddmm_{side}_s"] = timed(lambda side=side, X=X, Y=Y: ops.dots(side, X, Y), device)
            matrix = ops.matrix(side, conf)
            parts[f"spmm_{side}_s"] = timed(lambda matrix=matrix, Y=Y: torch.sparse.mm(matrix, Y), device)
        floors[d] = (1 + config.cg_steps) * sum(parts.values())
        dense = timed(lambda U=U, V=V: U[:batch] @ V.T, device)
        report(
            "yardstick",
            factors=d,
            **parts,
            sweep_floor_s=floors[d],
            score_batch_matmul_s=dense,
            all_users_matmul_s=dense * -(-n_users // batch),
        )
    return floors


def train_model(train: Any, config: TrainConfig, floor: float) -> MatrixFactorization:
    device = config.device
    reset_peak(device)
    t0 = time.perf_counter()
    model = MatrixFactorization(config).fit(train, progress=False)
    sync(device)
    wall = time.perf_counter() - t0
    sweeps = [r["seconds"] for r in model.history]
    losses = [r["loss"] for r in model.history]
    median = statistics.median(sweeps[1:] or sweeps)
    report(
        "train",
        device=device,
        factors=config.factors,
        sweeps=len(sweeps),
        s_per_sweep=median,
        first_sweep_s=sweeps[0],
        sweeps_s=float(sum(sweeps)),
        fit_wall_s=wall,
        sweep_over_floor=median / floor,
        loss_first=losses[0],
        loss_last=losses[-1],
        peak_gpu_gb=peak_gb(device),
    )
    return model


def score(model: MatrixFactorization, train: Any, device: str, check_users: int) -> None:
    export = ExportConfig()
    k, batch = export.top_k, (export.batch_users if torch.device(device).type == "cuda" else 256)
    users, movies = model.user_factors, model.movie_factors  # host arrays, as the export loads them
    exclude = (train.indptr, train.indices)
    top_k(users[: 2 * batch], movies, k, exclude=exclude, device=device, batch_size=batch)  # warm-up
    reset_peak(device)
    t0 = time.perf_counter()
    items, scores = top_k(users, movies, k, exclude=exclude, device=device, batch_size=batch)
    seconds = time.perf_counter() - t0
    peak = peak_gb(device)
    rng = np.random.default_rng(0)
    check = np.sort(rng.choice(len(users), min(check_users, len(users)), replace=False))
    cpu_items, cpu_scores = top_k(users, movies, k, exclude=exclude, users=check)
    report(
        "score",
        device=device,
        users=len(users),
        k=k,
        batch=batch,
        seconds=seconds,
        users_per_s=len(users) / seconds,
        peak_gpu_gb=peak,
        cpu_item_agreement=float((cpu_items == items[check]).mean()),
        cpu_score_max_abs_diff=float(np.nanmax(np.abs(np.nan_to_num(cpu_scores - scores[check])))),
        unfilled=int((items < 0).sum()),
    )


def agree(device: str, nnz: int, iterations: int) -> None:
    """The CPU path against the device path on a small matrix (in --dry: CPU torch kernels)."""
    small = random_interactions(nnz, "cpu", seed=1, match_nnz=True)
    base = dataclasses.replace(TrainConfig(), iterations=iterations)
    cpu = MatrixFactorization(dataclasses.replace(base, device="cpu")).fit(small, progress=False)
    other = {"device": device} if torch.device(device).type == "cuda" else {"cpu_kernels": "torch"}
    dev = MatrixFactorization(dataclasses.replace(base, device=device, **other)).fit(small, progress=False)
    cpu_loss = np.array([r["loss"] for r in cpu.history])
    dev_loss = np.array([r["loss"] for r in dev.history])
    loss_rel = float(np.max(np.abs(dev_loss - cpu_loss) / np.abs(cpu_loss)))
    U_cpu, U_dev = cpu.user_factors, dev.user_factors
    report(
        "agree",
        against="cuda" if other.get("device") else "cpu-torch",
        users=small.shape[0],
        nnz=small.nnz,
        iterations=iterations,
        cpu_loss_last=float(cpu_loss[-1]),
        device_loss_last=float(dev_loss[-1]),
        loss_max_rel_diff=loss_rel,
        factors_rel_diff=float(np.linalg.norm(U_dev - U_cpu) / np.linalg.norm(U_cpu)),
        ok=loss_rel <= 1e-4,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--nnz", type=int, default=FULL_NNZ, help="distinct interactions (full set's: default)")
    p.add_argument(
        "--factors",
        type=int,
        nargs="+",
        default=[TrainConfig().factors, 128],
        help="the first is the one scored (default: the config's)",
    )
    p.add_argument("--check-users", type=int, default=2_000, help="users compared with the CPU top-k")
    p.add_argument("--agree-nnz", type=int, default=300_000, help="interactions of the CPU/device check")
    p.add_argument(
        "--dry",
        action="store_true",
        default=bool(os.environ.get("WMF_GPU_CHECK_DRY")),
        help="tiny and on the CPU (also WMF_GPU_CHECK_DRY=1)",
    )
    args = p.parse_args()
    if args.dry:
        args.device, args.nnz, args.check_users, args.agree_nnz = "cpu", 200_000, 200, 60_000

    device = args.device
    name = torch.cuda.get_device_name() if torch.device(device).type == "cuda" else "cpu"
    print(f"torch {torch.__version__} on {name}; numpy {np.__version__}", flush=True)
    t0 = time.perf_counter()
    train = random_interactions(args.nnz, device, match_nnz=True)
    report(
        "data", users=train.shape[0], movies=train.shape[1], nnz=train.nnz, seconds=time.perf_counter() - t0
    )

    config = TrainConfig(device=device)
    batch = ExportConfig().batch_users
    floors = yardstick(train, config, args.factors, device, batch)
    reset_peak(device)  # the yardstick's copy of the matrix is gone
    scored = None
    for d in args.factors:
        model = train_model(train, dataclasses.replace(config, factors=d), floors[d])
        if scored is None:
            scored = model
        else:
            del model
    score(scored, train, device, args.check_users)
    del scored
    reset_peak(device)
    agree(device, args.agree_nnz, TrainConfig().iterations)


if __name__ == "__main__":
    main()
