"""The layouts the numba kernels build are those of plain numpy reference code."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_train import random_interactions

from wmf import kernels
from wmf.objective import confidences


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
