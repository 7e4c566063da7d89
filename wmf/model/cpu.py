"""The CPU backend: fused numba kernels (`kernels`) on numpy views of CPU tensors, over the
user-major CSR and, for the movie side, a column-tiled copy of it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from wmf.model import kernels
from wmf.model.ops import InteractionsLike, SparseOps, confidences

# Bytes of one column tile's slice of the scatter's factors (and as much again of its
# accumulators): half of a 1 MiB L2 together.
TILE_BYTES = 256 << 10


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

    def solve_cg(self, side, U, V, G, lam, steps: int) -> None:
        """Users: the row-local fused CG (one cache-hot pass per step over each user's movies).

        The movie side runs the vectorized CG over tiled scatters instead: gathering user
        factors at random, as implicit does, is what makes it 26x slower for 10x the data;
        at 10M ratings both ways cost the same here.
        """
        if side != "users":
            super().solve_cg(side, U, V, G, lam, steps)
            return
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
