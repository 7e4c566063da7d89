"""The GPU backend: torch sparse CSR products (`sampled_addmm` + `sparse.mm`), the matrix and its
transpose kept on the device. It runs on the CPU too, as the reference the fused kernels of
`cpu` are tested against, and for the sigmoid objective, which only it supports.
"""

from __future__ import annotations

import numpy as np
import torch

from wmf.model.ops import InteractionsLike, SparseOps, confidences


class TorchOps(SparseOps):
    """torch sparse CSR on any device; the CUDA path, and a CPU reference for the kernels."""

    def __init__(
        self,
        train: InteractionsLike,
        alpha: float,
        w0: float,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.n_users, self.n_movies = (int(s) for s in train.shape)
        self.w0, self.device, self.dtype = float(w0), torch.device(device), dtype
        crow = torch.as_tensor(np.asarray(train.indptr, dtype=np.int64), device=self.device)
        col = torch.as_tensor(np.asarray(train.indices, dtype=np.int64), device=self.device)
        conf = torch.as_tensor(confidences(train, alpha), device=self.device).to(dtype)
        rows = torch.repeat_interleave(torch.arange(self.n_users, device=self.device), crow.diff())
        # movie-major order of the same nonzeros (stable: users ascend within a movie)
        self.perm = torch.argsort(col, stable=True)
        crow_t = torch.zeros(self.n_movies + 1, dtype=torch.int64, device=self.device)
        crow_t[1:] = torch.cumsum(torch.bincount(col, minlength=self.n_movies), 0)
        self._csr = {
            "users": (crow, col, conf),
            "movies": (crow_t, rows[self.perm], conf[self.perm]),
        }
        self._shape = {"users": (self.n_users, self.n_movies), "movies": (self.n_movies, self.n_users)}

    def csr(self, side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self._csr[side]

    def matrix(self, side: str, values: torch.Tensor) -> torch.Tensor:
        crow, col, _ = self._csr[side]
        return torch.sparse_csr_tensor(crow, col, values, self._shape[side], check_invariants=False)

    def dots(self, side: str, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """x_r . y_c on every nonzero of that side's CSR, in its order."""
        pattern = self.matrix(side, self._csr[side][2])
        return torch.sparse.sampled_addmm(pattern, X, Y.T, beta=0.0).values()

    def fused(self, side: str, X: torch.Tensor, Y: torch.Tensor, ka: float, kb: float):
        conf = self._csr[side][2]
        coef = ka * conf + kb * (conf - self.w0) * self.dots(side, X, Y)
        return torch.sparse.mm(self.matrix(side, coef), Y)

    def observed_loss(self, U: torch.Tensor, V: torch.Tensor) -> float:
        p = self.dots("users", U, V).double()
        conf = self._csr["users"][2].double()
        return float((conf * (1 - p) ** 2 - self.w0 * p**2).sum())

    def residual_users(self, U, V):
        return self.fused("users", U, V, 1.0, -1.0)

    def residual_movies(self, U, V):
        return self.fused("movies", V, U, 1.0, -1.0)

    def product_users(self, P, V):
        return self.fused("users", P, V, 0.0, 1.0)

    def product_movies(self, U, P):
        return self.fused("movies", P, U, 0.0, 1.0)
