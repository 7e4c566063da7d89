"""Warm starts: tonight's model begins where the published one ended.

A night's data differs from the last one's by a day of ratings, so the published
factors are already close to tonight's optimum. Users and movies are matched by their
original ids (tonight's contiguous indexes may have shifted); a row new tonight gets
one exact least-squares solve against the other side (fold-in, in `MatrixFactorization.fit`),
a row gone tonight is dropped.

The published model stores the ids it was trained on beside its factors, and, when it
was refit after its evaluation, its pre-refit factors too: tonight's evaluated model
continues last night's evaluated one (it has not seen the held-out pairs, which a random
holdout keeps from night to night), and tonight's refit continues last night's refit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from safetensors.numpy import load_file, save_file

from wmf.layout import Index, Train

Factors = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Ids:
    """The original ids of an index's rows, and each user's interactions (trained or held out)."""

    users: np.ndarray
    movies: np.ndarray
    user_counts: np.ndarray

    @classmethod
    def of_index(cls, index_dir: Path) -> Ids:
        users = pl.read_parquet(Path(index_dir) / Index.USERS, columns=["user_id", "n_train", "n_holdout"])
        movies = pl.read_parquet(Path(index_dir) / Index.MOVIES, columns=["movie_id"])
        counts = (users["n_train"] + users["n_holdout"]).cast(pl.Int32)
        return cls(users["user_id"].to_numpy(), movies["movie_id"].to_numpy(), counts.to_numpy())

    def tensors(self) -> dict[str, np.ndarray]:
        """What a saved model stores of them."""
        return {"user_ids": self.users, "movie_ids": self.movies, "user_counts": self.user_counts}


@dataclass(frozen=True)
class Previous:
    """A published model to start from."""

    ids: Ids
    published: Factors
    evaluated: Factors | None  # pre-refit factors, when the model was refit


def load_previous(train_dir: Path) -> Previous:
    tensors = load_file(Path(train_dir) / Train.MODEL)
    ids = Ids(tensors["user_ids"], tensors["movie_ids"], tensors["user_counts"])
    evaluated = None
    if (Path(train_dir) / Train.EVALUATED).is_file():
        pre = load_file(Path(train_dir) / Train.EVALUATED)
        evaluated = (pre["user_factors"], pre["movie_factors"])
    return Previous(ids, (tensors["user_factors"], tensors["movie_factors"]), evaluated)


def save_evaluated(out: Path, factors: Factors) -> None:
    save_file({"user_factors": factors[0], "movie_factors": factors[1]}, Path(out) / Train.EVALUATED)


@dataclass(frozen=True)
class Start:
    """Initial factors on tonight's rows, and which rows must be folded in."""

    init: Factors
    fold_in: tuple[np.ndarray, np.ndarray]  # user rows, movie rows
    counts: dict[str, int]


def carry_over(factors: Factors, previous: Ids, tonight: Ids, refold_changed: bool = False) -> Start:
    """Last night's `factors` moved onto tonight's rows; new rows (and, with `refold_changed`,
    users whose interactions changed in number) are marked for fold-in."""
    U, user_pos, user_found = _match(previous.users, factors[0], tonight.users)
    V, _, movie_found = _match(previous.movies, factors[1], tonight.movies)
    refold = ~user_found
    if refold_changed:
        refold |= user_found & (previous.user_counts[user_pos] != tonight.user_counts)
    counts = {
        "users_new": int((~user_found).sum()),
        "users_dropped": len(previous.users) - int(user_found.sum()),
        "users_folded_in": int(refold.sum()),
        "movies_new": int((~movie_found).sum()),
        "movies_dropped": len(previous.movies) - int(movie_found.sum()),
    }
    return Start((U, V), (np.flatnonzero(refold), np.flatnonzero(~movie_found)), counts)


def _match(previous: np.ndarray, rows: np.ndarray, tonight: np.ndarray) -> tuple[np.ndarray, ...]:
    """(tonight's rows: last night's where the id was known, zeros elsewhere; positions; found).

    Both id arrays ascend (the index ranks ids in order), so one binary search matches them.
    """
    pos = np.searchsorted(previous, tonight).clip(max=max(len(previous) - 1, 0))
    found = previous[pos] == tonight if len(previous) else np.zeros(len(tonight), bool)
    out = np.zeros((len(tonight), rows.shape[1]), dtype=np.float32)
    out[found] = rows[pos[found]]
    return out, pos, found
