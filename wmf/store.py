"""Stage outputs on disk: atomic writes, building under a temporary name, publishing, the lock.

An output directory is complete exactly when its manifest exists, and it is only ever
created by renaming a finished temporary directory, so a crash never leaves a half-written
table that looks complete. Outputs are addressed by their cache key, so runs with other
parameters never overwrite each other. The names are `wmf.layout`'s; what a stage is and
what its manifest holds are `wmf.pipeline`'s: here a stage is a folder, `root`.
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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from wmf.errors import WmfError
from wmf.layout import LATEST, LOCK, MANIFEST, NEW_LATEST, TEMPORARY, TRASH


def fingerprint_json(obj: Any) -> str:
    """Stable short hash of a JSON-able object (parameters, fingerprints)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def write_json(path: Path, obj: Any) -> None:
    """Write JSON through a temporary file and rename it into place."""
    tmp = _temporary(path)
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write; rename it onto `path` on success."""
    tmp = _temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def is_complete(directory: Path) -> bool:
    return (Path(directory) / MANIFEST).is_file()


def read_manifest(directory: Path) -> dict[str, Any]:
    return read_json(Path(directory) / MANIFEST)


def latest(root: Path) -> Path | None:
    """The directory `root/latest` points at, or None before a first complete publish."""
    link = Path(root) / LATEST
    return link.resolve() if is_complete(link) else None


@contextlib.contextmanager
def building(root: Path, key: str) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success rename it to root/<key>.

    On failure the temporary directory is removed and nothing published changes.
    The caller writes the manifest (last) inside the block.
    """
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{TEMPORARY}{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if not is_complete(tmp):
            raise RuntimeError(f"{tmp} finished without its manifest")
        final = root / key
        if final.exists():
            # An identical key means identical inputs, parameters and code: the old
            # directory is a leftover or a damaged copy, so replace it.
            trash = root / f"{TRASH}{key}-{uuid.uuid4().hex[:8]}"
            os.rename(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def publish(root: Path, key: str, keep: int, protect: Iterable[str] = ()) -> Path:
    """Point root/latest at <key> in one rename, then prune all but the `keep` most recently
    published outputs and those named in `protect`."""
    target = root / key
    if not is_complete(target):
        raise WmfError(f"cannot publish incomplete output {target}")
    tmp_link = root / f"{NEW_LATEST}{uuid.uuid4().hex[:8]}"
    os.symlink(key, tmp_link)
    os.replace(tmp_link, root / LATEST)
    _touch(target)
    prune(root, keep=keep, protect={key, *protect})
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
    stale = list(root.glob(f"{TRASH}*"))
    for p in removed + stale:
        shutil.rmtree(p, ignore_errors=True)
    return removed


class DataLockedError(WmfError):
    """Another wmf process holds DATA."""


_held: set[Path] = set()  # the DATA folders this process holds


@contextlib.contextmanager
def exclusive(
    data: Path, wait: bool = False, on_wait: Callable[[str], None] = lambda _holder: None
) -> Iterator[None]:
    """Hold DATA/.lock so two pipelines never write the same DATA at once; `on_wait(holder)` is
    called before waiting for another process (with `wait`: else DataLockedError at once).

    An advisory flock dies with its process, so a killed run never leaves a stale lock. The
    lock is re-entrant within a process: the command line takes it before the flow it runs.
    """
    data = Path(data).absolute()
    if data in _held:
        yield
        return
    data.mkdir(parents=True, exist_ok=True)
    with (data / LOCK).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise DataLockedError(
                    f"another wmf run ({_holder(handle)}) is using {data}; wait for it to finish (or "
                    "pass --wait)"
                ) from None
            on_wait(_holder(handle))
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
        handle.flush()
        _held.add(data)
        try:
            yield
        finally:
            _held.discard(data)
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_locked(data: Path) -> bool:
    """Whether a run holds DATA now (this process's own runs included)."""
    path = Path(data).absolute() / LOCK
    if Path(data).absolute() in _held:
        return True
    if not path.is_file():
        return False
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _holder(handle: Any) -> str:
    handle.seek(0)
    return handle.read().strip() or "its process id unknown"


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def clean_stale(root: Path, resume: str | None = None) -> list[Path]:
    """Remove what killed runs left under a stage's folder: temporary outputs, trash,
    half-made links, half-written files (also in its `resume` folder).

    Only safe while holding DATA's lock (`exclusive`): then no other run is building.
    """
    patterns = [f"{TEMPORARY}*", f"{TRASH}*", f"{NEW_LATEST}*", ".*.tmp"]
    if resume:
        patterns += [f"{resume}/*/.*.tmp", f"{resume}/*/*/.*.tmp"]
    stale = [p for pattern in patterns for p in Path(root).glob(pattern)]
    for p in stale:
        if p.is_symlink() or p.is_file():
            p.unlink(missing_ok=True)
        else:
            remove_tree(p)
    return stale
