"""How tonight's recommendations differ from the previously published ones: drift.json.

Per user present in both exports: whether the top 10 changed at all (any position),
the Jaccard overlap of the two top-10 sets, and the rank-biased overlap of the whole
lists (Webber et al. 2010, extrapolated RBO with p = 0.9: 1 for identical lists, the
top ranks weighing most). Means over users, the users and movies that came and went,
and both score distributions. On the first night every comparison is null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numba
import numpy as np

from wmf.layout import Export
from wmf.stages.export.report import COUNTS, SHARES
from wmf.stages.export.schema import read_table

RBO_P = 0.9
TOP = 10
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


Lists = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def drift(previous: Path | None, now: Lists, current: Path) -> dict[str, Any]:
    """Compare tonight's lists `now` (of the export in `current`) with the export in `previous`
    (None: the first night). The export hands its lists over as it wrote them: reading 48 M
    rows back would cost seconds."""
    result: dict[str, Any] = {
        "previous_run": None if previous is None else previous.name,
        **dict.fromkeys((*COUNTS, *SHARES)),
        "scores": {"previous": None, "current": _distribution(now[3])},
    }
    if previous is None:
        return result
    before = read_lists(previous / Export.RECOMMENDATIONS)
    common, at_now, at_before = np.intersect1d(now[0], before[0], assume_unique=True, return_indices=True)
    changed, jaccard, rbo = _compare(now[1], now[2], at_now, before[1], before[2], at_before, TOP, RBO_P)
    kept_users = (
        _ids(previous / Export.USER_EMBEDDINGS, "user_id"),
        _ids(current / Export.USER_EMBEDDINGS, "user_id"),
    )
    kept_movies = (
        _ids(previous / Export.MOVIE_EMBEDDINGS, "movie_id"),
        _ids(current / Export.MOVIE_EMBEDDINGS, "movie_id"),
    )
    result.update(
        {
            "users_compared": len(common),
            f"share_changed@{TOP}": _mean(changed),
            f"jaccard@{TOP}": _mean(jaccard),
            "rbo": _mean(rbo),
            "new_users": len(np.setdiff1d(kept_users[1], kept_users[0])),
            "dropped_users": len(np.setdiff1d(kept_users[0], kept_users[1])),
            "new_movies": len(np.setdiff1d(kept_movies[1], kept_movies[0])),
            "dropped_movies": len(np.setdiff1d(kept_movies[0], kept_movies[1])),
        }
    )
    result["scores"]["previous"] = _distribution(before[3])
    return result


def read_lists(path: Path) -> Lists:
    """The lists of a recommendations table, by user and rank."""
    table = read_table(path, ["user_id", "rank", "movie_id", "score"])
    user, rank = table["user_id"].to_numpy(), table["rank"].to_numpy()
    movie, score = table["movie_id"].to_numpy(), table["score"].to_numpy()
    key = user.astype(np.int64) << 16 | rank.astype(np.int64)
    if len(key) > 1 and not np.all(key[1:] > key[:-1]):  # the export writes them in order
        order = np.argsort(key, kind="stable")
        user, movie, score = user[order], movie[order], score[order]
    return ranked_lists(user, movie, score)


def ranked_lists(user: np.ndarray, movie: np.ndarray, score: np.ndarray) -> Lists:
    """(distinct user ids, where each user's rows start (+ the end), movie ids, scores) of rows
    already ordered by user and rank."""
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if len(user) else np.zeros(0, np.int64)
    return user[starts], np.r_[starts, len(user)], movie, score


def _ids(path: Path, column: str) -> np.ndarray:
    return read_table(path, [column])[column].to_numpy()


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def _distribution(scores: np.ndarray) -> dict[str, float] | None:
    if len(scores) == 0:
        return None
    q = np.quantile(scores, QUANTILES)
    return {
        "mean": float(scores.mean()),
        **{f"q{round(100 * p):02d}": float(v) for p, v in zip(QUANTILES, q, strict=True)},
    }


@numba.njit(cache=True)
def _compare(starts_a, movies_a, at_a, starts_b, movies_b, at_b, top, p):
    """Per common user: top-`top` list changed (0/1), Jaccard of the top-`top` sets, RBO_ext."""
    n = len(at_a)
    size = max(movies_a.max() if len(movies_a) else 0, movies_b.max() if len(movies_b) else 0) + 1
    in_a = np.full(size, -1, np.int64)  # the user (position in at_a) whose list holds the movie
    in_b = np.full(size, -1, np.int64)
    changed, jaccard, rbo = np.ones(n), np.ones(n), np.ones(n)
    for u in range(n):
        a0, len_a = starts_a[at_a[u]], starts_a[at_a[u] + 1] - starts_a[at_a[u]]
        b0, len_b = starts_b[at_b[u]], starts_b[at_b[u] + 1] - starts_b[at_b[u]]
        depth = min(len_a, len_b)
        same = min(top, len_a) == min(top, len_b)
        overlap, weighted = 0, 0.0
        for d in range(depth):
            a, b = movies_a[a0 + d], movies_b[b0 + d]
            same &= d >= top or a == b
            in_a[a] = u
            overlap += in_b[a] == u
            in_b[b] = u
            overlap += in_a[b] == u
            if d + 1 == min(top, depth):
                jaccard[u] = overlap / (2 * (d + 1) - overlap)
            weighted += p**d * overlap / (d + 1)
        changed[u] = 0.0 if same else 1.0
        if depth > 0:
            rbo[u] = overlap / depth * p**depth + (1 - p) * weighted
    return changed, jaccard, rbo
