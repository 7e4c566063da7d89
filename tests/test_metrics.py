"""Ranking metrics: a hand-computed example and a per-user brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest

from wmf.data.interactions import Interactions
from wmf.evaluation.metrics import evaluate, evaluate_popularity, ranking_metrics, split_stderr


def interactions(dense: np.ndarray) -> Interactions:
    indptr = np.concatenate([[0], np.cumsum(dense.sum(axis=1))]).astype(np.int64)
    indices = np.nonzero(dense)[1].astype(np.int32)
    return Interactions(indptr, indices, np.ones(len(indices), np.int8), dense.shape)


def test_hand_computed_example():
    # user 0: hits at ranks 2 and 4 of 3 held-out items; user 1: one hit at rank 1, short list.
    items = np.array([[3, 1, 4, 2], [0, -1, -1, -1]])
    holdout = (np.array([0, 0, 0, 1]), np.array([1, 2, 5, 0]))
    m = ranking_metrics(items, np.array([0, 1]), holdout, n_items=6, ks=(2, 4))
    l2, l3, l5 = np.log2(3), np.log2(4), np.log2(5)  # discounts of ranks 2, 3, 4
    expected = {
        "recall@2": (1 / 2 + 1) / 2,
        "precision@2": (1 / 2 + 1 / 2) / 2,
        "ndcg@2": ((1 / l2) / (1 + 1 / l2) + 1) / 2,
        "map@2": ((1 / 2) / 2 + 1) / 2,
        "coverage@2": 3 / 6,
        "recall@4": (2 / 3 + 1) / 2,
        "precision@4": (2 / 4 + 1 / 4) / 2,
        "ndcg@4": ((1 / l2 + 1 / l5) / (1 + 1 / l2 + 1 / l3) + 1) / 2,
        "map@4": ((1 / 2 + 2 / 4) / 3 + 1) / 2,
        "coverage@4": 5 / 6,
    }
    means, stderr = split_stderr(m)
    assert means == pytest.approx(expected)
    assert stderr["recall@2"] == pytest.approx(np.std([1 / 2, 1], ddof=1) / np.sqrt(2))
    assert set(stderr) == {f"{n}@{k}" for n in ("recall", "ndcg", "map", "precision") for k in (2, 4)}


def reference(scores: np.ndarray, seen: np.ndarray, held: np.ndarray, ks) -> dict[str, float]:
    """Textbook per-user metrics with Python loops."""
    out = {f"{n}@{k}": [] for k in ks for n in ("recall", "ndcg", "map", "precision")}
    shown = {k: set() for k in ks}
    for u in np.nonzero(held.any(axis=1))[0]:
        ranking = sorted(
            (j for j in range(scores.shape[1]) if not seen[u, j]), key=lambda j: (-scores[u, j], j)
        )
        relevant = set(np.nonzero(held[u])[0])
        for k in ks:
            top = ranking[:k]
            shown[k].update(top)
            rel = [1.0 if j in relevant else 0.0 for j in top]
            n = min(k, len(relevant))
            out[f"recall@{k}"].append(sum(rel) / n)
            out[f"precision@{k}"].append(sum(rel) / k)
            dcg = sum(r / np.log2(i + 2) for i, r in enumerate(rel))
            out[f"ndcg@{k}"].append(dcg / sum(1 / np.log2(i + 2) for i in range(n)))
            out[f"map@{k}"].append(sum(sum(rel[: i + 1]) / (i + 1) for i, r in enumerate(rel) if r) / n)
    result = {name: float(np.mean(v)) for name, v in out.items()}
    result.update({f"{name}_stderr": float(np.std(v, ddof=1) / np.sqrt(len(v))) for name, v in out.items()})
    result.update({f"coverage@{k}": len(shown[k]) / scores.shape[1] for k in ks})
    return result


@pytest.fixture
def random_split():
    rng = np.random.default_rng(3)
    n_users, n_items = 120, 60
    watched = rng.random((n_users, n_items)) < rng.uniform(0.05, 0.9, (n_users, 1))
    held = watched & (rng.random((n_users, n_items)) < 0.3)
    held[::7] = False  # users without held-out items are not averaged
    train = watched & ~held
    u, i = np.nonzero(held)
    return train, held, (u.astype(np.int32), i.astype(np.int32))


KS = (1, 5, 10, 50)


def test_evaluate_matches_reference(random_split):
    train, held, holdout = random_split
    rng = np.random.default_rng(4)
    users = rng.integers(-3, 4, (train.shape[0], 3)).astype(np.float32)  # integer scores: ties
    items = rng.integers(-3, 4, (train.shape[1], 3)).astype(np.float32)
    got = evaluate(users, items, interactions(train), holdout, ks=KS)
    assert got == pytest.approx(reference(users @ items.T, train, held, KS))


def test_popularity_baseline_matches_reference(random_split):
    train, held, holdout = random_split
    counts = train.sum(axis=0).astype(np.float64)
    scores = np.broadcast_to(counts, train.shape)
    got = evaluate_popularity(interactions(train), holdout, ks=KS)
    assert got == pytest.approx(reference(scores, train, held, KS))
    assert got["coverage@1"] < 0.2  # everybody gets nearly the same list


def test_popularity_pads_a_user_who_has_seen_nearly_everything():
    train = np.ones((3, 5), dtype=bool)
    train[0, [1, 3]] = False  # user 0 has two unseen movies
    train[1:, 0] = False
    holdout = (np.array([0], np.int32), np.array([3], np.int32))
    got = evaluate_popularity(interactions(train), holdout, ks=(4,))
    assert got["recall@4"] == 1.0 and got["precision@4"] == 0.25
    assert got["coverage@4"] == 2 / 5  # only movies 1 and 3: the padding (-1) is no movie


def test_perfect_model_scores_one():
    held = np.eye(4, dtype=bool)
    train = np.zeros((4, 4), dtype=bool)
    u, i = np.nonzero(held)
    m = evaluate(np.eye(4), np.eye(4), interactions(train), (u, i), ks=(1, 2))
    assert m["recall@1"] == m["ndcg@2"] == m["map@2"] == m["precision@1"] == m["coverage@1"] == 1.0
    assert m["recall@1_stderr"] == 0.0
    assert m["precision@2"] == 0.5


def test_holdout_order_does_not_matter(random_split):
    """A user-major holdout takes a one-pass shortcut; a shuffled one must give the same metrics."""
    train, _, (users, items) = random_split
    rng = np.random.default_rng(5)
    factors_u, factors_i = rng.standard_normal((train.shape[0], 4)), rng.standard_normal((train.shape[1], 4))
    shuffle = rng.permutation(len(users))
    sorted_metrics = evaluate(factors_u, factors_i, interactions(train), (users, items), ks=KS)
    shuffled = evaluate(factors_u, factors_i, interactions(train), (users[shuffle], items[shuffle]), ks=KS)
    assert shuffled == sorted_metrics
    popular = evaluate_popularity(interactions(train), (users[shuffle], items[shuffle]), ks=KS)
    assert popular == evaluate_popularity(interactions(train), (users, items), ks=KS)
