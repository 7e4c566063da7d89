"""Content fingerprints of files, and a record of them kept in DATA so an unchanged file is
never read again.

A fingerprint is the first 16 bytes of the file's SHA-256, in hex. SHA-256 runs on the
CPUs' SHA extensions (1.6 GB/s per core here, blake2b 0.56) and releases the GIL, so
files hash in parallel threads.

Hashing 2 GB of raw text costs seconds in every new process, and a nightly run is always
a new process. `FingerprintCache` takes a file whose resolved path, size, modification
time and inode are those recorded when it was hashed, by the same kind of digest, to be
unchanged (what `make` and `git` trust too); `rehash` re-reads every file. A file
modified within _SETTLE_NS of its hashing may still have been being written: its
fingerprint is used but not kept, so the next run hashes it again. Files wmf wrote itself
and closed (`record`) are kept at once.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from wmf.store import read_json, write_json

DIGEST = "sha256/16"  # what `digest` computes: a fingerprint of another kind is stale
_CHUNK = 8 << 20
_SETTLE_NS = 2_000_000_000


def digest(path: Path, on_chunk: Callable[[int], object] | None = None) -> str:
    """SHA-256 of the file's bytes, its first 16 bytes in hex; `on_chunk` gets the size of each
    chunk read (progress)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
    return h.hexdigest()[:32]


def digest_all(paths: list[Path], on_chunk: Callable[[int], object] | None = None) -> list[str]:
    """`digest` of each, in parallel threads (a stage's outputs: ~1 GB for the index)."""
    if not paths:
        return []
    with ThreadPoolExecutor(max(1, min(len(paths), os.cpu_count() or 1))) as pool:
        return list(pool.map(lambda p: digest(p, on_chunk), paths))


class FingerprintCache:
    """Digests of files by resolved path, trusted while (size, mtime, inode) stay the same."""

    def __init__(self, path: Path, rehash: bool = False) -> None:
        self.path = Path(path)
        self.rehash = rehash
        self.hashed: list[Path] = []  # the files hashed or recorded in this process: what `save` keeps
        try:
            self.entries: dict[str, dict[str, Any]] = read_json(self.path)
        except (OSError, ValueError):
            self.entries = {}  # none yet, or unreadable: hash again, never fail a run for it

    def get_all(self, files: list[Path], label: str = "hashing raw files") -> list[str]:
        """The digests of `files`, hashing in parallel threads only those not known unchanged."""
        stats = [f.stat() for f in files]
        keys = [str(f.resolve()) for f in files]
        known = [None if self.rehash else self.entries.get(k) for k in keys]
        todo = [i for i, e in enumerate(known) if e is None or e.get("identity") != _identity(stats[i])]
        values = [e["digest"] if e is not None else "" for e in known]
        size = sum(stats[i].st_size for i in todo)
        # disable=None: a bar on a terminal only (a nightly log gets the stage's own lines)
        with tqdm(total=size, unit="B", unit_scale=True, desc=label, disable=None if todo else True) as bar:
            hashed = digest_all([files[i] for i in todo], bar.update)
        for i, value in zip(todo, hashed, strict=True):
            values[i] = value
            self.hashed.append(files[i])
            settled = time.time_ns() - stats[i].st_mtime_ns > _SETTLE_NS
            if settled and files[i].stat().st_mtime_ns == stats[i].st_mtime_ns:
                self.entries[keys[i]] = {"identity": _identity(stats[i]), "digest": value}
        return values

    def record(self, files: list[Path], digests: list[str]) -> None:
        """Keep the digests of files this process has just written and closed."""
        for f, value in zip(files, digests, strict=True):
            self.entries[str(f.resolve())] = {"identity": _identity(f.stat()), "digest": value}
        self.hashed.extend(files)

    def save(self) -> None:
        """Write the entries (atomically), without those of files gone since; a no-op when
        nothing was hashed."""
        if self.hashed:
            self.entries = {k: v for k, v in self.entries.items() if os.path.exists(k)}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, self.entries)


def _identity(st: os.stat_result) -> list[Any]:
    return [st.st_size, st.st_mtime_ns, st.st_ino, DIGEST]
