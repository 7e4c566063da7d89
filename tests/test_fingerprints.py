"""Raw fingerprints kept in DATA: an unchanged file is not read again, a touched one is."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

import wmf.fingerprints
from wmf.config import IngestConfig, PipelineConfig
from wmf.layout import FINGERPRINTS
from wmf.pipeline import plan as planning


@pytest.fixture
def raw(tiny_raw: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny raw folder, its files last modified an hour ago."""
    copy = tmp_path / "raw"
    shutil.copytree(tiny_raw, copy)
    old = time.time() - 3600
    for p in copy.iterdir():
        os.utime(p, (old, old))
    return copy


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files whose bytes are hashed."""
    seen: list[str] = []
    real = wmf.fingerprints.digest

    def counting(path: Path, on_chunk=None) -> str:
        seen.append(path.name)
        return real(path, on_chunk)

    monkeypatch.setattr(wmf.fingerprints, "digest", counting)
    return seen


def plan(raw: Path, data: Path, rehash: bool = False) -> planning.StagePlan:
    return planning.plan("ingest", data, PipelineConfig(ingest=IngestConfig(rehash=rehash)), raw)


def test_an_unchanged_file_is_not_read_again_in_a_new_process(raw, tmp_path, reads):
    data = tmp_path / "data"
    first = plan(raw, data)
    assert sorted(reads) == sorted(p.name for p in raw.iterdir())
    reads.clear()
    assert plan(raw, data).key == first.key and reads == []  # the fingerprints were read from DATA


def test_a_touched_or_changed_file_is_read_again(raw, tmp_path, reads):
    data = tmp_path / "data"
    first = plan(raw, data)
    reads.clear()
    titles = raw / "movie_titles.csv"
    later = time.time() - 60
    os.utime(titles, (later, later))  # touched: same bytes, same key
    assert plan(raw, data).key == first.key and reads == ["movie_titles.csv"]
    reads.clear()
    ratings = raw / "combined_data_1.txt"
    st = ratings.stat()
    text = ratings.read_bytes()
    ratings.write_bytes(text.replace(b",3,", b",4,", 1))  # same size, new bytes
    os.utime(ratings, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert plan(raw, data).key != first.key and reads == ["combined_data_1.txt"]


def test_rehash_reads_every_file_without_changing_the_key(raw, tmp_path, reads):
    data = tmp_path / "data"
    first = plan(raw, data)
    reads.clear()
    assert plan(raw, data, rehash=True).key == first.key
    assert sorted(reads) == sorted(p.name for p in raw.iterdir())


def test_a_file_modified_moments_ago_is_hashed_again_next_time(raw, tmp_path, reads):
    data = tmp_path / "data"
    (raw / "movie_titles.csv").touch()  # may still be being written
    plan(raw, data)
    reads.clear()
    plan(raw, data)
    assert reads == ["movie_titles.csv"]


def test_an_unreadable_cache_is_rebuilt_not_fatal(raw, tmp_path, reads):
    data = tmp_path / "data"
    first = plan(raw, data)
    (data / "ingest" / FINGERPRINTS).write_text("{not json")
    reads.clear()
    assert plan(raw, data).key == first.key and len(reads) == len(list(raw.iterdir()))


def test_a_fingerprint_of_another_digest_kind_is_not_trusted(raw, tmp_path, reads):
    """After the digest changed (blake2b -> SHA-256), fingerprints kept before are stale."""
    data = tmp_path / "data"
    first = plan(raw, data)
    path = data / "ingest" / FINGERPRINTS
    entries = json.loads(path.read_text())
    for entry in entries.values():
        entry["identity"] = entry["identity"][:3]  # as an older version kept them
        entry["digest"] = "0" * 32
    path.write_text(json.dumps(entries))
    reads.clear()
    assert plan(raw, data).key == first.key and len(reads) == len(list(raw.iterdir()))
