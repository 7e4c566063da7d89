"""Ingest reuse: a night whose raw folder gained a delta file parses only that file.

The published ingest's ratings table holds each raw file's rows contiguously, in file
order, and its manifest says how many each file gave and each file's fingerprint. A raw
file unchanged since then (same name, same fingerprint) needs no parse: its rows are a
slice of that table. Tonight's table is the slices and the freshly parsed files, in file
order: the same rows, in the same order, as a full parse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from wmf import store
from wmf.layout import Ingest

Parse = Callable[[list[Path]], list[dict[str, Any]]]  # parses files into a part, returns their counts


@dataclass(frozen=True)
class Reuse:
    """The published ingest, and the raw files (by name) unchanged since it was built."""

    previous: Path
    unchanged: frozenset[str]


def ratings(
    paths: list[Path], names: list[str], dest: Path, part: Path, reuse: Reuse, parse: Parse
) -> list | None:
    """Write tonight's ratings table into `dest` from slices and a parse of the other files
    (into `part`); their per-file counts, or None when nothing can be reused."""
    old = {
        f["name"]: f
        for f in store.read_manifest(reuse.previous)["summary"]["files"]
        if f["kind"] == "ratings"
    }
    if any("records" not in f for f in old.values()):
        return None  # an ingest from before per-file counts were kept
    offsets, start = {}, 0
    for name, f in old.items():
        offsets[name], start = (start, f["records"]), start + f["records"]
    kept = {n for n in names if n in reuse.unchanged and n in old and old[n]["rejected"] == 0}
    if not kept:
        return None
    fresh = [p for p, n in zip(paths, names, strict=True) if n not in kept]
    parsed = iter(parse(fresh) if fresh else [])
    counts, frames, at = [], [], 0
    for name in names:
        if name in kept:
            first, n = offsets[name]
            frames.append(pl.scan_parquet(reuse.previous / Ingest.RATINGS).slice(first, n))
            counts.append(dict(old[name]))
        else:
            info = next(parsed)
            frames.append(pl.scan_parquet(part).slice(at, info["records"]))
            at += info["records"]
            counts.append(info)
    pl.concat(frames).sink_parquet(dest, compression="zstd", statistics=True)
    part.unlink(missing_ok=True)
    return counts
