"""Ranking metrics of held-out interactions: recall, NDCG, MAP, precision, coverage at k.

The top-k lists are computed once at max(ks) (train items excluded) and sliced;
every metric is then a vectorized reduction over a users x ranks hit matrix.
Per-user metrics are averaged over users that have held-out items; beside each
mean, `<name>_stderr` is its standard error over those users, so a metric
estimated on a sample of users says how far it may be from the whole's.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from wmf.data.interactions import Interactions, distinct
from wmf.evaluation.topk import Array, top_k
from wmf.values import EVALUATED_KS, RANKING_METRICS

DEFAULT_KS = EVALUATED_KS
STDERR = "_stderr"


def evaluate(
    user_factors: Array,
    item_factors: Array,
    train: Interactions,
    holdout: tuple[np.ndarray, np.ndarray],
    ks: tuple[int, ...] = DEFAULT_KS,
    batch_size: int = 256,
    device: str = "cpu",
) -> dict[str, float]:
    """Metrics of the factor model's top-k lists against the held-out pairs."""
    users = distinct(holdout[0])
    items, _ = top_k(
        user_factors,
        item_factors,
        max(ks),
        exclude=(train.indptr, train.indices),
        users=users,
        batch_size=batch_size,
        device=device,
    )
    return ranking_metrics(items, users, holdout, train.n_movies, ks)


def evaluate_popularity(
    train: Interactions, holdout: tuple[np.ndarray, np.ndarray], ks: tuple[int, ...] = DEFAULT_KS
) -> dict[str, float]:
    """The same metrics for the baseline recommending the most-watched unseen movies.

    One global ranking (training count, ties to the lower index), walked per user
    past the movies they have seen: no per-user scoring of every movie.
    """
    counts = np.bincount(train.indices, minlength=train.n_movies)
    order = np.lexsort((np.arange(train.n_movies), -counts)).astype(np.int32)
    users = distinct(holdout[0]).astype(np.int64)
    items = _first_unseen(order, train.indptr, train.indices, users, max(ks))
    return ranking_metrics(items, users, holdout, train.n_movies, ks)


@numba.njit(cache=True, parallel=True)
def _first_unseen(order, indptr, indices, users, k):
    """Per user, the first k movies of `order` not in their CSR row (-1 pads a short list)."""
    out = np.full((users.shape[0], k), -1, np.int32)
    n_chunks = min(users.shape[0], 64)
    for c in numba.prange(n_chunks):
        seen = np.zeros(order.shape[0], np.bool_)
        for r in range(c * users.shape[0] // n_chunks, (c + 1) * users.shape[0] // n_chunks):
            u = users[r]
            for j in range(indptr[u], indptr[u + 1]):
                seen[indices[j]] = True
            got = 0
            for m in order:
                if got == k:
                    break
                if not seen[m]:
                    out[r, got] = m
                    got += 1
            for j in range(indptr[u], indptr[u + 1]):
                seen[indices[j]] = False
    return out


def ranking_metrics(
    items: np.ndarray,
    users: np.ndarray,
    holdout: tuple[np.ndarray, np.ndarray],
    n_items: int,
    ks: tuple[int, ...] = DEFAULT_KS,
) -> dict[str, Any]:
    """Metrics of ranked lists `items` [len(users), >= max(ks)] (-1 = empty slot).

    `users` must be the sorted distinct users of `holdout`, in the row order of `items`.
    """
    h_users, h_items = np.asarray(holdout[0]), np.asarray(holdout[1])
    if len(users) == 0:
        return {f"{name}@{k}": 0.0 for k in ks for name in (*RANKING_METRICS, "coverage")}
    order = np.argsort(h_users, kind="stable")
    starts = np.searchsorted(h_users[order], np.append(users, np.iinfo(np.int64).max)).astype(np.int64)
    cutoffs = np.array(sorted(set(ks)), dtype=np.int64)
    discount = 1.0 / np.log2(np.arange(2, cutoffs[-1] + 2))
    ideal = np.concatenate([[0.0], np.cumsum(discount)])
    per_user = _per_user(
        np.ascontiguousarray(items[:, : cutoffs[-1]], dtype=np.int32),
        starts,
        np.ascontiguousarray(h_items[order], dtype=np.int32),
        n_items,
        cutoffs,
        discount,
        ideal,
    )
    metrics: dict[str, Any] = {}
    for at, k in enumerate(cutoffs):
        for col, name in enumerate(RANKING_METRICS):  # _per_user's columns, in this order
            values = per_user[:, at, col]
            metrics[f"{name}@{k}"] = float(np.mean(values))
            metrics[f"{name}@{k}{STDERR}"] = (
                float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
            )
        shown = items[:, :k]
        metrics[f"coverage@{k}"] = float(
            np.count_nonzero(np.bincount(shown[shown >= 0], minlength=n_items)) / n_items
        )
    return metrics


@numba.njit(cache=True, parallel=True)
def _per_user(items, starts, relevant, n_items, cutoffs, discount, ideal):
    """Per user and cut-off k: recall, NDCG, average precision and precision of its ranked list.

    A user's relevant items (relevant[starts[r]:starts[r + 1]]) are marked in a bitmap,
    so each ranked item is checked in O(1); duplicates among them count once.
    """
    n = items.shape[0]
    out = np.zeros((n, len(cutoffs), 4))
    n_chunks = min(n, 64)
    for c in numba.prange(n_chunks):
        marked = np.zeros(n_items, np.bool_)
        for r in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            n_relevant = 0
            for j in range(starts[r], starts[r + 1]):
                if not marked[relevant[j]]:
                    marked[relevant[j]] = True
                    n_relevant += 1
            hits, dcg, ap, at = 0, 0.0, 0.0, 0
            for rank in range(items.shape[1]):
                m = items[r, rank]
                if m >= 0 and marked[m]:
                    hits += 1
                    dcg += discount[rank]
                    ap += hits / (rank + 1)
                while at < len(cutoffs) and cutoffs[at] == rank + 1:
                    denom = min(cutoffs[at], n_relevant)
                    out[r, at, 0] = hits / denom
                    out[r, at, 1] = dcg / ideal[denom]
                    out[r, at, 2] = ap / denom
                    out[r, at, 3] = hits / cutoffs[at]
                    at += 1
            for j in range(starts[r], starts[r + 1]):
                marked[relevant[j]] = False
    return out


def split_stderr(metrics: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """(the means, the standard errors by metric name) of one evaluation's metrics."""
    means = {k: v for k, v in metrics.items() if not k.endswith(STDERR)}
    return means, {k.removesuffix(STDERR): v for k, v in metrics.items() if k.endswith(STDERR)}
