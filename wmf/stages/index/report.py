"""What an index adds to a night's history: the night (`--until`) and the matrix's size."""

from __future__ import annotations

from typing import Any

HISTORY = {"until": "String", "users": "Int64", "movies": "Int64", "train_interactions": "Int64"}


def history(manifest: dict[str, Any]) -> dict[str, Any]:
    summary = manifest["summary"]
    return {
        "until": manifest["config"].get("until") or None,
        "users": summary["n_users"],
        "movies": summary["n_movies"],
        "train_interactions": summary["n_train"],
    }
