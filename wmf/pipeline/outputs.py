"""Published outputs: what a manifest records, and checking files against it.

A manifest (`manifest.json`, written last into an output) records the stage, its key and
code hash, its parameters, what it was built from (`inputs`: the fingerprints its key
hashes; `sources`: the keys of the outputs it read), every file it holds with its size and
SHA-256, its tables' row counts, and the build's own summary. An output written by an older
wmf (another `FORMAT`) is never read: its files have no fingerprints to check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wmf import store
from wmf.fingerprints import FingerprintCache, digest_all
from wmf.layout import FINGERPRINTS

FORMAT = 2  # 1: wmf 0.1.0, before every file had a fingerprint


def read(directory: Path | None) -> dict[str, Any] | None:
    """The manifest of a complete output of this format, or None."""
    if directory is None or not store.is_complete(directory):
        return None
    manifest = store.read_manifest(directory)
    return manifest if manifest.get("format") == FORMAT else None


def published(root: Path) -> tuple[Path, dict[str, Any]] | None:
    """A stage's published output and its manifest, or None (none yet, or an older wmf's)."""
    directory = store.latest(root)
    manifest = read(directory)
    return None if directory is None or manifest is None else (directory, manifest)


def fingerprints(
    manifest: dict[str, Any], names: tuple[str, ...] | list[str] | None = None
) -> dict[str, str]:
    """The SHA-256 of each named file the output holds (an optional file it lacks is left out);
    of every file without `names`."""
    files = manifest["files"]
    return {name: files[name]["sha256"] for name in (files if names is None else names) if name in files}


def damaged(directory: Path, expected: dict[str, str], trust: bool = False) -> list[str]:
    """The files of an output `directory` whose SHA-256 is not `expected`'s (missing ones too).

    With `trust`, a file unchanged since it was last hashed (size, modification time and inode,
    kept in its stage folder's fingerprint record) is not read again; without, every byte is.
    """
    names = list(expected)
    present = [n for n in names if (directory / n).is_file()]
    paths = [directory / n for n in present]
    if trust:
        known = FingerprintCache(directory.parent / FINGERPRINTS)
        got = known.get_all(paths, label="checking outputs")
        known.save()
    else:
        got = digest_all(paths)
    found = dict(zip(present, got, strict=True))
    return [n for n in names if found.get(n) != expected[n]]
