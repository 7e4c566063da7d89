"""The notebook's weighted squared error, computed exactly without a dense matrix.

J = sum_ij w_ij (M_ij - u_i . v_j)^2 + sum_i lam_i |u_i|^2 + sum_j lam_j |v_j|^2,
w = c = 1 + alpha * rating on interactions, w0 on every other cell. Splitting
the all-cells sum gives, in O(nnz d + (users + movies) d^2):

    J = sum_obs [c (1 - p)^2 - w0 p^2] + w0 * sum((U^T U) * (V^T V)) + reg.

The reported loss is J / (n_users * n_movies), the notebook's mean over cells.
The sparse products are done by `SparseOps`: fused numba kernels on the CPU
(wmf.kernels) or torch CSR ops (`sampled_addmm` + `sparse.mm`) anywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch

from wmf import kernels

# Bytes of one column tile's slice of the scatter's factors (and as much again of its
# accumulators): half of a 1 MiB L2 together.
TILE_BYTES = 256 << 10
# Elements of one dense block of the sigmoid all-cells term (bounds its memory).
SIGMOID_BLOCK = 1 << 25


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

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Context for the solver steps (see NumbaOps.exclusive)."""
        yield

    def penalty(self, lam: torch.Tensor, X: torch.Tensor) -> float:
        """sum_i lam_i |x_i|^2, in float64."""
        return float((lam.double() * (X.double() ** 2).sum(1)).sum())


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


class NumbaOps(SparseOps):
    """Fused numba kernels on numpy views of CPU tensors (wmf.kernels), over the user-major
    CSR and, for the movie side, a column-tiled copy of it."""

    def __init__(
        self,
        train: InteractionsLike,
        alpha: float,
        w0: float,
        dtype: torch.dtype = torch.float32,
        n_chunks: int | None = None,
    ) -> None:
        self.n_users, self.n_movies = (int(s) for s in train.shape)
        self.w0, self.device, self.dtype = float(w0), torch.device("cpu"), dtype
        np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
        self.indptr = np.ascontiguousarray(train.indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(train.indices, dtype=np.int32)
        self.conf = confidences(train, alpha).astype(np_dtype)
        # fixed partitions: results never depend on thread scheduling
        self.bounds = kernels.chunk_bounds(self.indptr, n_chunks or kernels.default_chunks())
        self.row_blocks = kernels.chunk_bounds(self.indptr, 8 * kernels.default_chunks())
        self._movie_csr: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._tiles: tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None

    def _movies(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Movie-major CSR (crow, user indices, conf), built on first use (Cholesky only)."""
        if self._movie_csr is None:
            perm = np.argsort(self.indices, kind="stable")
            rows = np.repeat(np.arange(self.n_users, dtype=np.int32), np.diff(self.indptr))
            crow = np.zeros(self.n_movies + 1, dtype=np.int64)
            crow[1:] = np.cumsum(np.bincount(self.indices, minlength=self.n_movies))
            self._movie_csr = (crow, rows[perm], self.conf[perm])
        return self._movie_csr

    def csr(self, side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        crow, col, conf = (self.indptr, self.indices, self.conf) if side == "users" else self._movies()
        return torch.from_numpy(crow), torch.from_numpy(col), torch.from_numpy(conf)  # int32 col: no copy

    def sub_csr(self, side: str, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Movies' rows without the movie-major CSR (argsorting every nonzero): one scan of the
        user-major one (measured: 0.2 s in torch ops at 10M ratings, 30 ms here)."""
        if side == "users" or self._movie_csr is not None:
            return super().sub_csr(side, rows)
        local = np.full(self.n_movies, -1, dtype=np.int64)
        local[rows.numpy()] = np.arange(len(rows))
        crow, users, conf = kernels.select_columns(self.indptr, self.indices, self.conf, local, len(rows))
        return torch.from_numpy(crow), torch.from_numpy(users), torch.from_numpy(conf)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Run torch single-threaded meanwhile: its OpenMP threads and numba's workers
        fight for the same cores (measured: the movie step took 0.95 s instead of 0.5 s
        at 8M ratings on 2 cores), and the dense ops beside the kernels are small."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def cg_users(self, U, V, G, lam, steps: int) -> None:
        """The row-local fused CG (one cache-hot pass per step over each user's movies).

        The movie side instead runs the vectorized CG over tiled scatters: gathering
        user factors at random, as implicit does, is what makes it 26x slower for 10x
        the data; at 10M ratings both ways cost the same here.
        """
        kernels.cg_rows(
            self.indptr, self.indices, self.conf, self.w0, V.numpy(), (self.w0 * G).numpy(),
            lam.numpy(), U.numpy(), steps, self.row_blocks,
        )  # fmt: skip

    def penalty(self, lam: torch.Tensor, X: torch.Tensor) -> float:
        """One parallel pass (the float64 copies of the torch expression cost 0.16 s a call at
        full scale, every iteration)."""
        rows = np.linspace(0, len(X), kernels.default_chunks() + 1).astype(np.int64)
        return float(kernels.penalty(lam.numpy(), X.numpy(), rows))

    def observed_loss(self, U, V) -> float:
        return float(
            kernels.observed_loss(
                self.indptr, self.indices, self.conf, self.w0, U.numpy(), V.numpy(), self.bounds
            )
        )

    def _gather(self, X, Y, ka: float, kb: float) -> torch.Tensor:
        out = torch.empty_like(X)
        kernels.gather_rows(
            self.indptr, self.indices, self.conf, self.w0, ka, kb,
            X.numpy(), Y.numpy(), self.row_blocks, out.numpy(),
        )  # fmt: skip
        return out

    def _scatter(self, X, P, ka: float, kb: float) -> torch.Tensor:
        d = P.shape[1]
        width = min(self.n_movies, max(16, TILE_BYTES // (d * self.conf.itemsize)))
        if self._tiles is None or self._tiles[0] != width:
            self._tiles = (width, kernels.tile_columns(self.indptr, self.indices, self.conf, width))
        tile_ptr, indices, conf = self._tiles[1]
        acc = np.empty((len(self.bounds) - 1, *P.shape), dtype=self.conf.dtype)
        kernels.scatter_cols(tile_ptr, indices, conf, self.w0, ka, kb, X.numpy(), P.numpy(), self.bounds, acc)
        return torch.from_numpy(acc.sum(axis=0))

    def residual_users(self, U, V):
        return self._gather(U, V, 1.0, -1.0)

    def residual_movies(self, U, V):
        return self._scatter(U, V, 1.0, -1.0)

    def product_users(self, P, V):
        return self._gather(P, V, 0.0, 1.0)

    def product_movies(self, U, P):
        return self._scatter(U, P, 0.0, 1.0)


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
