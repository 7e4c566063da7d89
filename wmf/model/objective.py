"""The notebook's weighted squared error, computed exactly without a dense matrix.

J = sum_ij w_ij (M_ij - u_i . v_j)^2 + sum_i lam_i |u_i|^2 + sum_j lam_j |v_j|^2,
w = c = 1 + alpha * rating on interactions, w0 on every other cell. Splitting
the all-cells sum gives, in O(nnz d + (users + movies) d^2):

    J = sum_obs [c (1 - p)^2 - w0 p^2] + w0 * sum((U^T U) * (V^T V)) + reg.

The reported loss is J / (n_users * n_movies), the notebook's mean over cells.
The sparse products are a backend's (`wmf.model.ops`): fused numba kernels on the CPU
(`cpu`) or torch CSR ops anywhere (`gpu`).
"""

from __future__ import annotations

import numpy as np
import torch

from wmf.model.cpu import NumbaOps
from wmf.model.gpu import TorchOps
from wmf.model.ops import InteractionsLike, SparseOps

# Elements of one dense block of the sigmoid all-cells term (bounds its memory).
SIGMOID_BLOCK = 1 << 25


def make_ops(
    train: InteractionsLike,
    alpha: float,
    w0: float,
    device: torch.device | str,
    backend: str = "numba",
    dtype: torch.dtype = torch.float32,
) -> SparseOps:
    """numba kernels on the CPU unless `backend="torch"`; torch CSR on CUDA."""
    if torch.device(device).type == "cpu" and backend == "numba":
        return NumbaOps(train, alpha, w0, dtype)
    return TorchOps(train, alpha, w0, device, dtype)


def regularization_weights(
    train: InteractionsLike, regularization: float, scale: bool, w0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row L2 weights; with `scale`, lam_i = lam (n_i + w0 * other side's size) (iALS++)."""
    n_users, n_movies = (int(s) for s in train.shape)
    if not scale:
        return np.full(n_users, regularization), np.full(n_movies, regularization)
    per_user = np.diff(np.asarray(train.indptr)).astype(np.float64)
    per_movie = np.bincount(np.asarray(train.indices), minlength=n_movies).astype(np.float64)
    return regularization * (per_user + w0 * n_movies), regularization * (per_movie + w0 * n_users)


class Objective:
    """Exact loss and gradients of the weighted objective (optionally with sigmoid predictions)."""

    def __init__(
        self,
        ops: SparseOps,
        lam_users: np.ndarray,
        lam_movies: np.ndarray,
        sigmoid: bool = False,
    ) -> None:
        if sigmoid and not isinstance(ops, TorchOps):
            raise ValueError("the sigmoid objective needs TorchOps")
        self.ops, self.sigmoid, self.w0 = ops, sigmoid, ops.w0
        self.lam_users = torch.as_tensor(lam_users, dtype=ops.dtype, device=ops.device)
        self.lam_movies = torch.as_tensor(lam_movies, dtype=ops.dtype, device=ops.device)
        self.cells = ops.n_users * ops.n_movies

    def penalty(self, U: torch.Tensor, V: torch.Tensor) -> float:
        return self.ops.penalty(self.lam_users, U) + self.ops.penalty(self.lam_movies, V)

    def total(self, U: torch.Tensor, V: torch.Tensor) -> float:
        """J itself (sum over cells plus penalty)."""
        if self.sigmoid:
            return self._sigmoid_total(U, V, with_grad=False)[0]
        gram = float(((U.T @ U).double() * (V.T @ V).double()).sum())
        return self.ops.observed_loss(U, V) + self.w0 * gram + self.penalty(U, V)

    def loss(self, U: torch.Tensor, V: torch.Tensor) -> float:
        """The notebook's loss: J divided by the number of cells."""
        return self.total(U, V) / self.cells

    def gradients(self, U: torch.Tensor, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """d loss / dU and d loss / dV (of the mean, as the notebook's autograd saw it)."""
        if self.sigmoid:
            _, gU, gV = self._sigmoid_total(U, V, with_grad=True)
        else:
            # dJ/dU = -2 R V + 2 w0 U (V^T V) + 2 lam U, R = c (1 - p) + w0 p on interactions
            gU = -2 * self.ops.residual_users(U, V) + 2 * self.w0 * U @ (V.T @ V)
            gV = -2 * self.ops.residual_movies(U, V) + 2 * self.w0 * V @ (U.T @ U)
        gU = gU + 2 * self.lam_users[:, None] * U
        gV = gV + 2 * self.lam_movies[:, None] * V
        return gU / self.cells, gV / self.cells

    def _sigmoid_total(self, U, V, with_grad: bool):
        """Sigmoid predictions: no Gramian shortcut, so the all-cells term w0 sum s^2 is
        computed in dense blocks of movies: O(n_users n_movies d) work, fine on a GPU but
        minutes per iteration on a CPU at full scale. Never the whole dense matrix at once."""
        ops: TorchOps = self.ops  # type: ignore[assignment]
        gU = torch.zeros_like(U) if with_grad else None
        gV = torch.zeros_like(V) if with_grad else None
        total = 0.0
        block = max(1, SIGMOID_BLOCK // max(1, ops.n_users))
        for start in range(0, ops.n_movies, block):
            Vb = V[start : start + block]
            s = torch.sigmoid(U @ Vb.T)
            total += self.w0 * float((s.double() ** 2).sum())
            if with_grad:
                g = 2 * self.w0 * s * s * (1 - s)
                gU += g @ Vb
                gV[start : start + block] = g.T @ U
        # interactions: replace w0 s^2 by c (1 - s)^2
        conf = ops.csr("users")[2]
        s = torch.sigmoid(ops.dots("users", U, V))
        total += float((conf.double() * (1 - s.double()) ** 2 - self.w0 * s.double() ** 2).sum())
        total += self.penalty(U, V)
        if with_grad:
            g = (-2 * conf * (1 - s) - 2 * self.w0 * s) * s * (1 - s)
            gU += torch.sparse.mm(ops.matrix("users", g), V)
            gV += torch.sparse.mm(ops.matrix("movies", g[ops.perm]), U)
        return total, gU, gV
