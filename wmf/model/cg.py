"""Conjugate gradient on every row's normal equations at once, through the sparse products."""

from __future__ import annotations

from collections.abc import Callable

import torch

from wmf.model.kernels import CG_EPS

Product = Callable[[torch.Tensor], torch.Tensor]


def batched_cg(
    X: torch.Tensor,
    G: torch.Tensor,
    w0: float,
    lam: torch.Tensor,
    steps: int,
    residual: torch.Tensor,
    product: Product,
) -> None:
    """`steps` CG steps on every row at once, X updated in place.

    `residual` is the sparse part of b - A X (sum_obs [c - (c - w0) p] y); `product(P)`
    the sparse part of A P. A row stops for good once its residual vanishes, the same
    rule as the numba row kernel.
    """
    lam = lam[:, None]
    r = residual - w0 * X @ G - lam * X
    p = r.clone()
    rs = (r * r).sum(1)
    active = torch.ones_like(rs, dtype=torch.bool)
    for _ in range(steps):
        active &= rs > CG_EPS
        ap = product(p) + w0 * p @ G + lam * p
        pap = (p * ap).sum(1)
        active &= pap > 0
        alpha = torch.where(active, rs / torch.where(active, pap, 1), 0)[:, None]
        X += alpha * p
        r -= alpha * ap
        rs_new = (r * r).sum(1)
        beta = torch.where(active, rs_new / torch.where(active, rs, 1), 0)[:, None]
        p = torch.where(active[:, None], r + beta * p, p)
        rs = torch.where(active, rs_new, rs)
