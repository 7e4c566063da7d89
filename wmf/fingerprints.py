"""Fingerprints of the raw files, kept in DATA so an unchanged file is never read again.

Hashing the 2 GB of raw text costs seconds in every new process, and a nightly run
is always a new process. A file whose resolved path, size, modification time and
inode are those recorded when it was hashed, by the same kind of digest, is taken to
be unchanged (what `make` and `git` trust too); `rehash` re-reads every file. A file
modified within _SETTLE_NS of its hashing may still have been being written: its
fingerprint is used but not kept, so the next run hashes it again.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from wmf.store import DIGEST, digest, read_json, write_json

_SETTLE_NS = 2_000_000_000


class FingerprintCache:
    """Digests of files by resolved path, trusted while (size, mtime, inode) stay the same."""

    def __init__(self, path: Path, rehash: bool = False) -> None:
        self.path = Path(path)
        self.rehash = rehash
        self.hashed: list[Path] = []  # the files read in this process, for tests and logs
        try:
            self.entries: dict[str, dict[str, Any]] = read_json(self.path)
        except (OSError, ValueError):
            self.entries = {}  # none yet, or unreadable: hash again, never fail a run for it

    def get_all(self, files: list[Path]) -> list[str]:
        """The digests of `files`, hashing in parallel threads only those not known unchanged."""
        stats = [f.stat() for f in files]
        keys = [str(f.resolve()) for f in files]
        identities = [[st.st_size, st.st_mtime_ns, st.st_ino, DIGEST] for st in stats]
        known = [None if self.rehash else self.entries.get(k) for k in keys]
        todo = [i for i, e in enumerate(known) if e is None or e.get("identity") != identities[i]]
        values = [e["digest"] if e is not None else "" for e in known]
        size = sum(stats[i].st_size for i in todo)
        # disable=None: a bar on a terminal only (a nightly log gets the stage's own lines)
        with (
            tqdm(
                total=size,
                unit="B",
                unit_scale=True,
                desc="hashing raw files",
                disable=None if todo else True,
            ) as bar,
            ThreadPoolExecutor(max(1, min(len(todo), os.cpu_count() or 1))) as pool,
        ):
            for i, value in zip(todo, pool.map(lambda i: digest(files[i], bar.update), todo), strict=True):
                values[i] = value
                self.hashed.append(files[i])
                settled = time.time_ns() - stats[i].st_mtime_ns > _SETTLE_NS
                if settled and files[i].stat().st_mtime_ns == stats[i].st_mtime_ns:
                    self.entries[keys[i]] = {"identity": identities[i], "digest": value}
        return values

    def save(self) -> None:
        """Write the entries (atomically) when a file was hashed; a no-op otherwise."""
        if self.hashed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, self.entries)
