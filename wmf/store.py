"""Stage outputs on disk: atomic writes, content fingerprints and publishing.

Layout under DATA, the same for every stage::

    DATA/<stage>/<key>/          one complete output, manifest.json written last
    DATA/<stage>/latest -> <key> symlink swapped by rename: readers see one whole run
    DATA/<stage>/.tmp-<key>-*/   work in progress, never read

An output directory is complete exactly when its manifest exists, and it is
only ever created by renaming a finished temporary directory, so a crash never
leaves a half-written table that looks complete. Outputs are addressed by their
cache key, so runs with other parameters never overwrite each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from wmf.errors import MissingInputError, WmfError

MANIFEST = "manifest.json"
LATEST = "latest"
_HASH_CHUNK = 8 << 20
DIGEST = "sha256/16"  # what `digest` computes: a fingerprint of another kind is stale


def digest(path: Path, on_chunk: Callable[[int], object] | None = None) -> str:
    """SHA-256 of the file's bytes, its first 16 bytes in hex; `on_chunk` gets the size of each
    chunk read (progress). SHA-256 runs on the CPUs' SHA extensions (1.6 GB/s per core here,
    blake2b 0.56) and releases the GIL, so files hash in parallel threads."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
    return h.hexdigest()[:32]


def fingerprint_file(path: Path) -> str:
    """The file's digest, cached in this process by size and mtime."""
    st = path.stat()
    cache_key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if cache_key not in _fingerprint_cache:
        _fingerprint_cache[cache_key] = digest(path)
    return _fingerprint_cache[cache_key]


_fingerprint_cache: dict[tuple[str, int, int], str] = {}


def fingerprint_files(paths: list[Path]) -> list[str]:
    """`fingerprint_file` of each, in parallel threads (a stage's tables: ~1 GB for the index)."""
    with ThreadPoolExecutor(max(1, min(len(paths), os.cpu_count() or 1))) as pool:
        return list(pool.map(fingerprint_file, paths))


def fingerprint_json(obj: Any) -> str:
    """Stable short hash of a JSON-able object (parameters, fingerprints)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def write_json(path: Path, obj: Any) -> None:
    """Write JSON through a temporary file and rename it into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write; rename it onto `path` on success."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def stage_root(data: Path, stage: str) -> Path:
    return Path(data) / stage


def output_dir(data: Path, stage: str, key: str) -> Path:
    return stage_root(data, stage) / key


def is_complete(directory: Path) -> bool:
    return (directory / MANIFEST).is_file()


def read_manifest(directory: Path) -> dict[str, Any]:
    return read_json(directory / MANIFEST)


def latest_dir(data: Path, stage: str) -> Path:
    """The directory of the stage's last published output, or a clear error."""
    link = stage_root(data, stage) / LATEST
    if not is_complete(link):
        raise MissingInputError(
            f"no published output of stage '{stage}' under {stage_root(data, stage)}: "
            f"run `wmf {stage}` (or `wmf run`) first"
        )
    return link.resolve()


@contextlib.contextmanager
def building(data: Path, stage: str, key: str) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success rename it to DATA/<stage>/<key>.

    On failure the temporary directory is removed and nothing published changes.
    The caller writes the manifest (last) inside the block.
    """
    root = stage_root(data, stage)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if not is_complete(tmp):
            raise RuntimeError(f"stage '{stage}' finished without writing its manifest")
        final = root / key
        if final.exists():
            # An identical key means identical inputs, parameters and code: the old
            # directory may be an incomplete leftover, so replace it.
            trash = root / f".trash-{key}-{uuid.uuid4().hex[:8]}"
            os.rename(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def publish(data: Path, stage: str, key: str, keep: int) -> Path:
    """Point DATA/<stage>/latest at <key> in one rename, then prune old outputs."""
    root = stage_root(data, stage)
    target = root / key
    if not is_complete(target):
        raise MissingInputError(f"cannot publish incomplete output {target}")
    tmp_link = root / f".latest-{uuid.uuid4().hex[:8]}"
    os.symlink(key, tmp_link)
    os.replace(tmp_link, root / LATEST)
    _touch(target)
    # The outputs of this stage it was built from (a warm start, the previous export) stay:
    # an unchanged rerun finds its key through them.
    sources = {v for v in read_manifest(target).get("inputs", {}).values() if isinstance(v, str)}
    prune(root, keep=keep, protect={key, *sources})
    return target


def _touch(directory: Path) -> None:
    now = time.time()
    os.utime(directory, (now, now))


def prune(root: Path, keep: int, protect: set[str]) -> list[Path]:
    """Remove all but the `keep` most recently published outputs (and those named in
    `protect`), and stale temporaries."""
    outputs = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    removed = [p for p in outputs[max(keep, 1) :] if p.name not in protect]
    stale = [p for p in root.glob(".trash-*")]
    for p in removed + stale:
        shutil.rmtree(p, ignore_errors=True)
    return removed


class DataLockedError(WmfError):
    """Another wmf process holds DATA."""


@contextlib.contextmanager
def exclusive(data: Path, wait: bool = False) -> Iterator[None]:
    """Hold DATA/.lock so two pipelines never write the same DATA at once.

    An advisory flock dies with its process, so a killed run never leaves a stale lock.
    """
    data = Path(data)
    data.mkdir(parents=True, exist_ok=True)
    with (data / ".lock").open("a+") as handle:
        flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(handle, flags)
        except BlockingIOError:
            raise DataLockedError(
                f"another wmf run is using {data}; wait for it to finish (or pass --wait)"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
