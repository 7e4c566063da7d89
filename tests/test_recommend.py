"""top_k and similar_items against a brute-force ranking (ties to the lower item index)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wmf.evaluation.topk import _mask_seen, _select_torch, similar_items, top_k


def brute_top_k(scores: np.ndarray, seen: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by (score descending, item ascending), dropping seen items."""
    n_rows, n_items = scores.shape
    items = np.full((n_rows, k), -1, dtype=np.int32)
    values = np.full((n_rows, k), -np.inf, dtype=np.float32)
    for r in range(n_rows):
        order = sorted((j for j in range(n_items) if not seen[r, j]), key=lambda j: (-scores[r, j], j))[:k]
        items[r, : len(order)] = order
        values[r, : len(order)] = scores[r, order]
    return items, values


def to_csr(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.concatenate([[0], np.cumsum(dense.sum(axis=1))]).astype(np.int64)
    return indptr, np.nonzero(dense)[1].astype(np.int32)


@pytest.fixture
def tied_problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Small integer factors: many exactly tied scores, ~half the items seen."""
    rng = np.random.default_rng(0)
    users = rng.integers(-2, 3, (300, 4)).astype(np.float32)
    items = rng.integers(-2, 3, (70, 4)).astype(np.float32)
    seen = rng.random((300, 70)) < 0.5
    return users, items, seen


@pytest.mark.parametrize("k", [1, 7, 33, 40, 80])
def test_top_k_matches_brute_force_with_ties_and_short_rows(tied_problem, k):
    users, items, seen = tied_problem
    expected = brute_top_k(users @ items.T, seen, k)
    got = top_k(users, items, k, exclude=to_csr(seen), batch_size=64)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[0].dtype == np.int32 and got[1].dtype == np.float32
    if k >= 40:  # some users have fewer unseen items than k: -1 / -inf padding
        assert (got[0] == -1).any() and np.all(np.isneginf(got[1][got[0] == -1]))


@pytest.mark.parametrize(("n_items", "k"), [(70, 1), (70, 33), (1000, 5), (1000, 40)])
def test_chunked_scoring_matches_brute_force(monkeypatch, n_items, k):
    """Scores built in many column chunks (the last one partial) and selected across them."""
    monkeypatch.setattr("wmf.evaluation.topk._CHUNK_BYTES", 64 * 4 * 64)  # 64-column chunks at 64 rows
    rng = np.random.default_rng(2)
    users = rng.integers(-2, 3, (300, 4)).astype(np.float32)
    items = rng.integers(-2, 3, (n_items, 4)).astype(np.float32)
    seen = rng.random((300, n_items)) < 0.4
    expected = brute_top_k(users @ items.T, seen, k)
    got = top_k(users, items, k, exclude=to_csr(seen), batch_size=64)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


@pytest.mark.parametrize("k", [5, 40])
def test_torch_selection_path_agrees(tied_problem, k):
    """The CUDA code path (torch.topk + tie repair), exercised on the CPU."""
    users, items, seen = tied_problem
    scores = torch.as_tensor(users @ items.T)
    indptr, indices = to_csr(seen)
    _mask_seen(scores, (indptr, indices))
    got_items, got_values = _select_torch(scores, k)
    expected = brute_top_k(users @ items.T, seen, k)
    np.testing.assert_array_equal(got_items.numpy(), expected[0])
    np.testing.assert_array_equal(got_values.numpy(), expected[1])


def test_top_k_never_returns_seen_items_and_ranks_descending():
    rng = np.random.default_rng(1)
    users, items = rng.standard_normal((500, 16)), rng.standard_normal((1000, 16))
    seen = rng.random((500, 1000)) < 0.3
    got_items, got_scores = top_k(torch.as_tensor(users), items, 50, exclude=to_csr(seen), batch_size=128)
    assert not seen[np.arange(500)[:, None], got_items].any()
    assert (np.diff(got_scores, axis=1) <= 0).all()
    expected = brute_top_k((users @ items.T).astype(np.float32), seen, 50)[0]
    assert (got_items == expected).mean() > 0.999  # float64 -> float32 rounding may swap near-ties


def test_single_threaded_path_agrees_and_thread_count_is_restored(tied_problem):
    users, items, seen = tied_problem
    expected = brute_top_k(users @ items.T, seen, 12)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = top_k(users, items, 12, exclude=to_csr(seen), batch_size=50)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(single[0], expected[0])
    top_k(users, items, 12, exclude=to_csr(seen), batch_size=50)
    assert torch.get_num_threads() == before


def test_user_subset_keeps_requested_order(tied_problem):
    users, items, seen = tied_problem
    subset = np.array([299, 3, 150, 3])
    full = top_k(users, items, 10, exclude=to_csr(seen))
    part = top_k(users, items, 10, exclude=to_csr(seen), users=subset, batch_size=3)
    np.testing.assert_array_equal(part[0], full[0][subset])


def test_k_larger_than_catalogue_pads():
    items, scores = top_k(np.ones((2, 1)), np.array([[1.0], [3.0], [2.0]]), 5)
    np.testing.assert_array_equal(items, [[1, 2, 0, -1, -1]] * 2)
    assert np.isneginf(scores[:, 3:]).all()


def test_similar_items_is_cosine_and_excludes_self():
    factors = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [-1.0, 0.0], [0.0, 0.0]])
    items, scores = similar_items(factors, 4)
    assert (items != np.arange(5)[:, None]).all()
    assert items[0].tolist() == [1, 2, 4, 3]  # cosine ignores length; zero vector scores 0
    np.testing.assert_allclose(scores[0], [10 / np.sqrt(101), 0.0, 0.0, -1.0], rtol=1e-6)
    assert items[4].tolist() == [0, 1, 2, 3]  # all tied at 0: lower index first


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_top_k_and_similar_equal_cpu() -> None:
    rng = np.random.default_rng(3)
    users = rng.integers(-3, 4, (500, 8)).astype(np.float32)  # integer scores: many ties
    items = rng.integers(-3, 4, (300, 8)).astype(np.float32)
    counts = rng.integers(0, 40, 500)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = np.concatenate([np.sort(rng.choice(300, c, replace=False)) for c in counts]).astype(np.int32)
    for k in (10, 100, 299):
        cpu = top_k(users, items, k, exclude=(indptr, indices))
        cuda = top_k(users, items, k, exclude=(indptr, indices), device="cuda", batch_size=128)
        np.testing.assert_array_equal(cuda[0], cpu[0])
        np.testing.assert_allclose(cuda[1], cpu[1], rtol=1e-6)
    dense = rng.normal(size=(300, 8)).astype(np.float32)  # no ties: cosines round differently
    np.testing.assert_array_equal(similar_items(dense, 20, device="cuda")[0], similar_items(dense, 20)[0])
