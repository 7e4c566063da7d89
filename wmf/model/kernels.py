"""Fused numba CPU kernels over the user-major CSR of interactions.

Why not torch sparse ops on the CPU: a CG step built from `sampled_addmm` +
`sparse.mm` costs ~170 ms at 8M nonzeros (d=64), and ALS needs four of them per
half-step. Here one pass over a row computes the dot and the axpy of every
nonzero with an explicit loop over d (vectorized by LLVM), so each factor row
is read once per pass while it is hot in cache.

Both half-steps read the big user matrix sequentially: the user side runs a
small CG per row; at full scale the movie side streams users and scatters into
per-chunk movie accumulators (movies x d is small; visited tile by tile so the
hot slice stays in L2), reduced afterwards in chunk order. The
partition of rows into chunks is fixed by the caller, so results do not depend
on thread scheduling.

Every weighted term has the form coef = ka * c + kb * (c - w0) * (x_u . y_j):
(ka, kb) = (1, -1) gives the residual sum_j [c - (c - w0) p] y_j (also the
gradient's sparse part), (0, 1) gives the CG product sum_j (c - w0) p y_j.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange

# A row (or CG direction) whose squared residual falls below this is converged.
CG_EPS = 1e-20


def chunk_bounds(indptr: np.ndarray, n_chunks: int) -> np.ndarray:
    """Row boundaries splitting the rows into `n_chunks` ranges of about equal nonzeros."""
    n_rows = len(indptr) - 1
    targets = np.linspace(0, indptr[-1], n_chunks + 1)
    bounds = np.searchsorted(indptr, targets, side="left").astype(np.int64)
    bounds[0], bounds[-1] = 0, n_rows
    return np.maximum.accumulate(np.minimum(bounds, n_rows))


def default_chunks() -> int:
    return numba.get_num_threads()


@njit(parallel=True, fastmath=True, cache=True)
def observed_loss(indptr, indices, conf, w0, X, Y, bounds):  # pragma: no cover - numba
    """sum over interactions of c (1 - p)^2 - w0 p^2, p = x_u . y_j (float64 partials)."""
    n_chunks = len(bounds) - 1
    d = X.shape[1]
    partial = np.zeros(n_chunks, dtype=np.float64)
    zero = X.dtype.type(0)
    for t in prange(n_chunks):
        acc = 0.0
        for u in range(bounds[t], bounds[t + 1]):
            for k in range(indptr[u], indptr[u + 1]):
                j = indices[k]
                s = zero
                for f in range(d):
                    s += X[u, f] * Y[j, f]
                c = conf[k]
                acc += c * (1.0 - s) * (1.0 - s) - w0 * s * s
        partial[t] = acc
    return partial.sum()


@njit(parallel=True, fastmath=True, cache=True)
def gather_rows(indptr, indices, conf, w0, ka, kb, X, Y, bounds, out):  # pragma: no cover
    """out_u = sum_j [ka c + kb (c - w0)(x_u . y_j)] y_j for every row u."""
    n_chunks = len(bounds) - 1
    d = X.shape[1]
    zero = X.dtype.type(0)
    wf, kaf, kbf = X.dtype.type(w0), X.dtype.type(ka), X.dtype.type(kb)
    for t in prange(n_chunks):
        for u in range(bounds[t], bounds[t + 1]):
            for f in range(d):
                out[u, f] = zero
            for k in range(indptr[u], indptr[u + 1]):
                j = indices[k]
                s = zero
                for f in range(d):
                    s += X[u, f] * Y[j, f]
                c = conf[k]
                coef = kaf * c + kbf * (c - wf) * s
                for f in range(d):
                    out[u, f] += coef * Y[j, f]


def tile_columns(
    indptr: np.ndarray, indices: np.ndarray, conf: np.ndarray, tile_width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorder the nonzeros by (column tile, row, column) for `scatter_cols`.

    Returns (tile_ptr, tile_indices, tile_conf): the nonzeros of row u in tile b are
    tile_ptr[b * n_rows + u] : tile_ptr[b * n_rows + u + 1]. A counting sort: no
    nnz-sized temporaries beyond the reordered copy itself.
    """
    n_rows = len(indptr) - 1
    n_tiles = int(indices.max(initial=0)) // tile_width + 1
    tile_ptr = np.zeros(n_tiles * n_rows + 1, dtype=np.int64)
    _count_tiles(indptr, indices, tile_width, tile_ptr[1:])
    np.cumsum(tile_ptr, out=tile_ptr)
    out_indices = np.empty_like(indices)
    out_conf = np.empty_like(conf)
    _fill_tiles(indptr, indices, conf, tile_width, tile_ptr[:-1].copy(), out_indices, out_conf)
    return tile_ptr, out_indices, out_conf


# Row u only ever touches the slots b * n_rows + u: the rows run in parallel.
@njit(parallel=True, cache=True)
def _count_tiles(indptr, indices, width, counts):  # pragma: no cover - numba
    n_rows = len(indptr) - 1
    for u in prange(n_rows):
        for k in range(indptr[u], indptr[u + 1]):
            counts[(indices[k] // width) * n_rows + u] += 1


@njit(parallel=True, cache=True)
def _fill_tiles(indptr, indices, conf, width, cursor, out_indices, out_conf):  # pragma: no cover
    n_rows = len(indptr) - 1
    for u in prange(n_rows):
        for k in range(indptr[u], indptr[u + 1]):
            slot = (indices[k] // width) * n_rows + u
            out_indices[cursor[slot]] = indices[k]
            out_conf[cursor[slot]] = conf[k]
            cursor[slot] += 1


@njit(parallel=True, fastmath=True, cache=True)
def scatter_cols(tile_ptr, indices, conf, w0, ka, kb, X, P, bounds, acc):  # pragma: no cover
    """acc[t, j] = sum over chunk t's rows u of [ka c + kb (c - w0)(x_u . p_j)] x_u.

    Summing acc over t (in order) gives the column-side product. X is read
    sequentially; columns are visited one tile at a time (see `tile_columns`), so
    the slices of P and acc being hit stay in L2 instead of being fetched from L3.
    Each acc[t, j] sums its rows in ascending order: the tiling changes no result.

    A row's nonzeros go two at a time: two dot products in one loop are two independent
    chains of additions where one waited for the other (1.1-1.6x faster at d = 32, where the
    dot is one chain of 8-wide steps). Each dot and each update is the same sum in the
    same order as one at a time: the results are bit for bit those of the plain loop.
    """
    n_chunks = len(bounds) - 1
    n_rows = X.shape[0]
    n_tiles = (len(tile_ptr) - 1) // n_rows
    d = X.shape[1]
    zero = X.dtype.type(0)
    wf, kaf, kbf = X.dtype.type(w0), X.dtype.type(ka), X.dtype.type(kb)
    for t in prange(n_chunks):
        a = acc[t]
        a[:] = zero
        for b in range(n_tiles):
            base = b * n_rows
            for u in range(bounds[t], bounds[t + 1]):
                k, end = tile_ptr[base + u], tile_ptr[base + u + 1]
                while k + 1 < end:
                    j, j2 = indices[k], indices[k + 1]
                    s, s2 = zero, zero
                    for f in range(d):
                        s += X[u, f] * P[j, f]
                        s2 += X[u, f] * P[j2, f]
                    c, c2 = conf[k], conf[k + 1]
                    coef = kaf * c + kbf * (c - wf) * s
                    coef2 = kaf * c2 + kbf * (c2 - wf) * s2
                    for f in range(d):
                        a[j, f] += coef * X[u, f]
                    for f in range(d):
                        a[j2, f] += coef2 * X[u, f]
                    k += 2
                if k < end:  # the odd one left
                    j = indices[k]
                    s = zero
                    for f in range(d):
                        s += X[u, f] * P[j, f]
                    c = conf[k]
                    coef = kaf * c + kbf * (c - wf) * s
                    for f in range(d):
                        a[j, f] += coef * X[u, f]


@njit(parallel=True, fastmath=True, cache=True)
def penalty(lam, X, bounds):  # pragma: no cover - numba
    """sum_u lam_u |x_u|^2 in float64, one pass (float64 partial sums per chunk of rows)."""
    n_chunks = len(bounds) - 1
    partial = np.zeros(n_chunks, dtype=np.float64)
    for t in prange(n_chunks):
        acc = 0.0
        for u in range(bounds[t], bounds[t + 1]):
            s = 0.0
            for f in range(X.shape[1]):
                s += np.float64(X[u, f]) * np.float64(X[u, f])
            acc += lam[u] * s
        partial[t] = acc
    return partial.sum()


# Reductions live in loops without stores: a loop that also stores gets a runtime
# aliasing check whose outcome (vector or scalar order of the sum) depends on the
# addresses of the work arrays, which made results differ from run to run.
@njit(fastmath=True, cache=True, inline="always")
def _dot(a, b):  # pragma: no cover - numba
    s = a.dtype.type(0)
    for f in range(a.shape[0]):
        s += a[f] * b[f]
    return s


@njit(fastmath=True, cache=True, inline="always")
def _sq_norm(a):  # pragma: no cover - numba
    return _dot(a, a)


def cg_rows(indptr, indices, conf, w0, Y, GW, lam, X, steps, bounds) -> None:
    """Warm-started CG on every row: (GW + lam_u I + sum_j (c - w0) y_j y_j^T) x_u = sum_j c y_j.

    GW is w0 * Y^T Y. X is updated in place. Same iteration and stopping rule as
    the vectorized torch CG in wmf.model.solvers, so both give the same factors.

    The blocks of rows run on threads around a serial kernel that releases the GIL rather
    than in a numba prange: loaded from numba's cache, the prange version ran other code
    than it had compiled, and at d = 8 or 32 the first run after compiling and the later
    ones differed in the last bits of the factors. Serial code loads as it compiled.
    """
    with ThreadPoolExecutor(numba.get_num_threads()) as pool:
        rows = (bounds[t : t + 2] for t in range(len(bounds) - 1))
        list(pool.map(lambda lo_hi: _cg_block(indptr, indices, conf, w0, Y, GW, lam, X, steps, *lo_hi), rows))


@njit(fastmath=True, cache=True, nogil=True)
def _cg_block(indptr, indices, conf, w0, Y, GW, lam, X, steps, lo, hi):  # pragma: no cover - numba
    """`cg_rows` on the rows lo..hi."""
    d = X.shape[1]
    zero = X.dtype.type(0)
    wf = X.dtype.type(w0)
    x = np.empty(d, dtype=X.dtype)
    r = np.empty(d, dtype=X.dtype)
    p = np.empty(d, dtype=X.dtype)
    ap = np.empty(d, dtype=X.dtype)
    for u in range(lo, hi):
        lu = lam[u]
        for f in range(d):
            x[f] = X[u, f]
        # r = b - A x, fused: sum_j [c - (c - w0) (x . y_j)] y_j - GW x - lam x
        for f in range(d):
            s = zero
            for g in range(d):
                s += GW[f, g] * x[g]
            r[f] = -s - lu * x[f]
        for k in range(indptr[u], indptr[u + 1]):
            j = indices[k]
            s = zero
            for f in range(d):
                s += x[f] * Y[j, f]
            c = conf[k]
            coef = c - (c - wf) * s
            for f in range(d):
                r[f] += coef * Y[j, f]
        p[:] = r
        rs = _sq_norm(r)
        for _ in range(steps):
            if rs <= CG_EPS:
                break
            for f in range(d):
                s = zero
                for g in range(d):
                    s += GW[f, g] * p[g]
                ap[f] = s + lu * p[f]
            for k in range(indptr[u], indptr[u + 1]):
                j = indices[k]
                s = zero
                for f in range(d):
                    s += p[f] * Y[j, f]
                coef = (conf[k] - wf) * s
                for f in range(d):
                    ap[f] += coef * Y[j, f]
            pap = _dot(p, ap)
            if pap <= 0.0:
                break
            alpha = rs / pap
            for f in range(d):
                x[f] += alpha * p[f]
                r[f] -= alpha * ap[f]
            rs_new = _sq_norm(r)
            beta = rs_new / rs
            for f in range(d):
                p[f] = r[f] + beta * p[f]
            rs = rs_new
        for f in range(d):
            X[u, f] = x[f]


@njit(cache=True)
def select_columns(indptr, indices, conf, local, n_wanted):  # pragma: no cover - numba
    """The nonzeros of the columns with local[column] >= 0 as a CSR over those columns
    (crow, row, conf), rows ascending within each: one counting pass, one filling pass."""
    crow = np.zeros(n_wanted + 1, dtype=np.int64)
    for k in range(len(indices)):
        if local[indices[k]] >= 0:
            crow[local[indices[k]] + 1] += 1
    crow = np.cumsum(crow)
    cursor = crow[:-1].copy()
    rows = np.empty(crow[-1], dtype=np.int64)
    out_conf = np.empty(crow[-1], dtype=conf.dtype)
    for u in range(len(indptr) - 1):
        for k in range(indptr[u], indptr[u + 1]):
            slot = local[indices[k]]
            if slot >= 0:
                rows[cursor[slot]] = u
                out_conf[cursor[slot]] = conf[k]
                cursor[slot] += 1
    return crow, rows, out_conf
