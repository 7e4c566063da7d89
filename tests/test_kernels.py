"""The numba kernels against plain reference code: the layouts they build, the sums they make."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers_train import random_interactions
from numba import njit

from wmf.model import kernels
from wmf.model.ops import confidences


@pytest.mark.parametrize("width", [1, 7, 64, 10_000])
def test_column_tiles_are_a_stable_sort_by_tile_then_row(width: int) -> None:
    train = random_interactions(300, 150, density=0.1, seed=2)
    indptr = np.asarray(train.indptr, np.int64)
    indices = np.asarray(train.indices, np.int32)
    conf = confidences(train, 0.5)
    tile_ptr, tile_indices, tile_conf = kernels.tile_columns(indptr, indices, conf, width)
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    order = np.argsort((indices // width).astype(np.int64) * (len(indptr) - 1) + rows, kind="stable")
    np.testing.assert_array_equal(tile_indices, indices[order])
    np.testing.assert_array_equal(tile_conf, conf[order])
    slot = (indices[order] // width).astype(np.int64) * (len(indptr) - 1) + rows[order]
    np.testing.assert_array_equal(tile_ptr, np.searchsorted(slot, np.arange(len(tile_ptr)), side="left"))


@njit(fastmath=True)
def _scatter_one_at_a_time(indptr, indices, conf, w0, ka, kb, X, P, bounds, acc):  # pragma: no cover
    """`kernels.scatter_cols` before its speedups: untiled, one nonzero after the other."""
    for t in range(len(bounds) - 1):
        acc[t] = 0
        for u in range(bounds[t], bounds[t + 1]):
            for k in range(indptr[u], indptr[u + 1]):
                j = indices[k]
                s = X.dtype.type(0)
                for f in range(X.shape[1]):
                    s += X[u, f] * P[j, f]
                c = conf[k]
                coef = X.dtype.type(ka) * c + X.dtype.type(kb) * (c - X.dtype.type(w0)) * s
                for f in range(X.shape[1]):
                    acc[t, j, f] += coef * X[u, f]


@pytest.mark.parametrize("d", [1, 8, 16, 32, 37, 48, 64, 100])
def test_column_scatter_makes_the_sums_of_the_plain_loop_bit_for_bit(d: int) -> None:
    train = random_interactions(400, 150, density=0.1, seed=d)
    indptr = np.asarray(train.indptr, np.int64)
    indices = np.asarray(train.indices, np.int32)
    conf = confidences(train, 0.5)
    assert (np.diff(indptr) % 2 == 1).any() and (np.diff(indptr) % 2 == 0).any()  # pairs and odd ones left
    rng = np.random.default_rng(d)
    X = rng.standard_normal((400, d)).astype(np.float32)
    P = rng.standard_normal((150, d)).astype(np.float32)
    bounds = kernels.chunk_bounds(indptr, 3)
    expected = np.empty((3, 150, d), np.float32)
    _scatter_one_at_a_time(indptr, indices, conf, 0.1, 1.0, -1.0, X, P, bounds, expected)
    tile_ptr, tile_indices, tile_conf = kernels.tile_columns(indptr, indices, conf, 40)
    got = np.empty_like(expected)
    kernels.scatter_cols(tile_ptr, tile_indices, tile_conf, 0.1, 1.0, -1.0, X, P, bounds, got)
    np.testing.assert_array_equal(got, expected)


_CG_SCRIPT = """
import sys
import numpy as np
from helpers_train import random_interactions
from wmf.model import kernels
from wmf.model.ops import confidences

out = {}
for d in (8, 32, 64):
    train = random_interactions(2000, 300, density=0.05, seed=d)
    indptr, indices = np.asarray(train.indptr, np.int64), np.asarray(train.indices, np.int32)
    rng = np.random.default_rng(d)
    X = rng.standard_normal((2000, d)).astype(np.float32)
    Y = rng.standard_normal((300, d)).astype(np.float32)
    GW = (0.1 * Y.T @ Y).astype(np.float32)
    lam = np.ones(2000, np.float32)
    conf, bounds = confidences(train, 0.5), kernels.chunk_bounds(indptr, 8)
    out[f"loss {d}"] = np.array(kernels.observed_loss(indptr, indices, conf, 0.1, X, Y, bounds))
    out[f"gather {d}"] = np.empty_like(X)
    kernels.gather_rows(indptr, indices, conf, 0.1, 1.0, -1.0, X, Y, bounds, out[f"gather {d}"])
    out[f"scatter {d}"] = np.empty((8, 300, d), np.float32)
    tiles = kernels.tile_columns(indptr, indices, conf, 64)
    kernels.scatter_cols(*tiles, 0.1, 1.0, -1.0, X, Y, bounds, out[f"scatter {d}"])
    kernels.cg_rows(indptr, indices, conf, 0.1, Y, GW, lam, X, 3, bounds)
    out[f"cg {d}"] = X
np.savez(sys.argv[1], **out)
"""


def test_kernels_compute_the_same_compiled_afresh_and_loaded_from_numbas_cache(tmp_path: Path) -> None:
    """The first run after an install compiles the kernels, the next ones load them: the same bits."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(Path(__file__).parent)}
    for run in ("compiled", "cached"):
        subprocess.run([sys.executable, "-c", _CG_SCRIPT, str(tmp_path / run)], env=env, check=True)
    compiled, cached = np.load(tmp_path / "compiled.npz"), np.load(tmp_path / "cached.npz")
    assert any((tmp_path / "cache").rglob("*.nbc"))
    for name in compiled.files:
        np.testing.assert_array_equal(cached[name], compiled[name], err_msg=name)
