"""What a compute backend provides: the products with the interaction matrix that the exact
objective and its solvers need. The backends are `cpu` (fused numba kernels) and `gpu` (torch
sparse CSR, on CUDA or as a CPU reference); `make_ops` picks one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch

from wmf.model.cg import batched_cg


class InteractionsLike(Protocol):
    indptr: np.ndarray
    indices: np.ndarray
    ratings: np.ndarray
    shape: Any


def confidences(train: InteractionsLike, alpha: float) -> np.ndarray:
    conf = np.asarray(train.ratings).astype(np.float32)  # float32 throughout: 4 bytes/rating
    conf *= np.float32(alpha)
    conf += np.float32(1.0)
    return conf


class SparseOps:
    """Products with the interaction matrix that the objective and ALS need.

    residual_*: sum over a row's interactions of [c - (c - w0) p] times the other
    side's factor (the right-hand side minus the sparse part of A x; also the
    gradient's sparse part). product_*: sum of (c - w0) p times the factor.
    """

    n_users: int
    n_movies: int
    w0: float
    device: torch.device
    dtype: torch.dtype

    def observed_loss(self, U: torch.Tensor, V: torch.Tensor) -> float: ...
    def residual_users(self, U: torch.Tensor, V: torch.Tensor) -> torch.Tensor: ...
    def residual_movies(self, U: torch.Tensor, V: torch.Tensor) -> torch.Tensor: ...
    def product_users(self, P: torch.Tensor, V: torch.Tensor) -> torch.Tensor: ...
    def product_movies(self, U: torch.Tensor, P: torch.Tensor) -> torch.Tensor: ...
    def csr(self, side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(crow, col, conf) of the user-major ("users") or movie-major ("movies") CSR."""
        ...

    def sub_csr(self, side: str, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(crow, col, conf) of just these rows of that side's CSR, in the order of `rows`."""
        crow, col, conf = self.csr(side)
        rows = rows.to(crow.device)
        counts = crow[rows + 1] - crow[rows]
        sub_crow = torch.zeros(len(rows) + 1, dtype=torch.int64, device=crow.device)
        sub_crow[1:] = torch.cumsum(counts, 0)
        n = int(sub_crow[-1])
        pos = torch.repeat_interleave(crow[rows] - sub_crow[:-1], counts, output_size=n)
        pos += torch.arange(n, device=crow.device)
        return sub_crow, col[pos], conf[pos]

    def solve_cg(
        self, side: str, U: torch.Tensor, V: torch.Tensor, G: torch.Tensor, lam: torch.Tensor, steps: int
    ) -> None:
        """`steps` warm-started CG steps on every row of one side (`side` = "users" or
        "movies"), in place: vectorized over rows, through the sparse products."""
        if side == "users":
            residual, product, X = self.residual_users(U, V), lambda P: self.product_users(P, V), U
        else:
            residual, product, X = self.residual_movies(U, V), lambda P: self.product_movies(U, P), V
        batched_cg(X, G, self.w0, lam, steps, residual, product)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Context for the solver steps (see NumbaOps.exclusive)."""
        yield

    def penalty(self, lam: torch.Tensor, X: torch.Tensor) -> float:
        """sum_i lam_i |x_i|^2, in float64."""
        return float((lam.double() * (X.double() ** 2).sum(1)).sum())
