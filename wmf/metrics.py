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

from wmf.interactions import Interactions, distinct
from wmf.recommend import Array, top_k

DEFAULT_KS = (10, 20, 50, 100)
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
        return {f"{name}@{k}": 0.0 for k in ks for name in ("recall", "ndcg", "map", "precision", "coverage")}
    relevant = distinct(np.searchsorted(users, h_users).astype(np.int64) * n_items + h_items)
    n_relevant = np.bincount(relevant // n_items, minlength=len(users))
    depth = max(ks)
    ranked = items[:, :depth].astype(np.int64)
    keys = np.arange(len(users), dtype=np.int64)[:, None] * n_items + ranked
    pos = np.minimum(np.searchsorted(relevant, keys), len(relevant) - 1)
    hits = (relevant[pos] == keys) & (ranked >= 0)

    discount = 1.0 / np.log2(np.arange(2, depth + 2))
    ideal = np.concatenate([[0.0], np.cumsum(discount)])
    cum_hits = np.cumsum(hits, axis=1)
    precision_at_rank = cum_hits / np.arange(1, depth + 1)
    dcg = np.cumsum(hits * discount, axis=1)
    ap_sum = np.cumsum(hits * precision_at_rank, axis=1)

    metrics: dict[str, Any] = {}
    for k in ks:
        n_hits = cum_hits[:, k - 1]
        denom = np.minimum(k, n_relevant)
        per_user = {
            "recall": n_hits / denom,
            "ndcg": dcg[:, k - 1] / ideal[denom],
            "map": ap_sum[:, k - 1] / denom,
            "precision": n_hits / k,
        }
        for name, values in per_user.items():
            metrics[f"{name}@{k}"] = float(np.mean(values))
            metrics[f"{name}@{k}{STDERR}"] = (
                float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
            )
        shown = items[:, :k]
        metrics[f"coverage@{k}"] = float(
            np.count_nonzero(np.bincount(shown[shown >= 0], minlength=n_items)) / n_items
        )
    return metrics


def split_stderr(metrics: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """(the means, the standard errors by metric name) of one evaluation's metrics."""
    means = {k: v for k, v in metrics.items() if not k.endswith(STDERR)}
    return means, {k.removesuffix(STDERR): v for k, v in metrics.items() if k.endswith(STDERR)}
