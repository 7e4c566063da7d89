"""Fingerprints of the raw files, kept in DATA so an unchanged file is never read again.

Hashing the 2 GB of raw text costs seconds in every new process, and a nightly run
is always a new process. A file whose resolved path, size, modification time and
inode are those recorded when it was hashed is taken to be unchanged (what `make`
and `git` trust too); `rehash` re-reads every file. A file modified within
_SETTLE_NS of its hashing may still have been being written: its fingerprint is
used but not kept, so the next run hashes it again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from wmf.store import digest, read_json, write_json

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

    def get(self, file: Path) -> str:
        st = file.stat()
        key, identity = str(file.resolve()), [st.st_size, st.st_mtime_ns, st.st_ino]
        entry = self.entries.get(key)
        if not self.rehash and entry is not None and entry.get("identity") == identity:
            return entry["digest"]
        value = digest(file, progress=True)
        self.hashed.append(file)
        if time.time_ns() - st.st_mtime_ns > _SETTLE_NS and file.stat().st_mtime_ns == st.st_mtime_ns:
            self.entries[key] = {"identity": identity, "digest": value}
        return value

    def save(self) -> None:
        """Write the entries (atomically) when a file was hashed; a no-op otherwise."""
        if self.hashed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, self.entries)
