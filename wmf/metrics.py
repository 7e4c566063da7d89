"""Ranking metrics of held-out interactions: recall, NDCG, MAP, precision, coverage at k.

The top-k lists are computed once at max(ks) (train items excluded) and sliced;
every metric is then a vectorized reduction over a users x ranks hit matrix.
Per-user metrics are averaged over users that have held-out items.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wmf.interactions import Interactions
from wmf.recommend import Array, top_k

DEFAULT_KS = (10, 20, 50, 100)


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
    users = np.unique(np.asarray(holdout[0]))
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

    Movies are ranked by training count, ties to the lower index; the score is
    that rank reversed (distinct integers), so top_k needs no tie handling.
    """
    counts = np.bincount(train.indices, minlength=train.n_movies)
    order = np.lexsort((np.arange(train.n_movies), -counts))
    rank_score = np.empty(train.n_movies, dtype=np.float32)
    rank_score[order] = np.arange(train.n_movies, 0, -1, dtype=np.float32)
    users = np.unique(np.asarray(holdout[0]))
    items, _ = top_k(
        np.ones((train.n_users, 1), dtype=np.float32),
        rank_score[:, None],
        max(ks),
        exclude=(train.indptr, train.indices),
        users=users,
    )
    return ranking_metrics(items, users, holdout, train.n_movies, ks)


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
    relevant = np.unique(np.searchsorted(users, h_users).astype(np.int64) * n_items + h_items)
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
        metrics[f"recall@{k}"] = float(np.mean(n_hits / denom))
        metrics[f"ndcg@{k}"] = float(np.mean(dcg[:, k - 1] / ideal[denom]))
        metrics[f"map@{k}"] = float(np.mean(ap_sum[:, k - 1] / denom))
        metrics[f"precision@{k}"] = float(np.mean(n_hits / k))
        shown = items[:, :k]
        metrics[f"coverage@{k}"] = float(len(np.unique(shown[shown >= 0])) / n_items)
    return metrics
