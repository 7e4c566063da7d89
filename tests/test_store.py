"""Stage storage: nothing half-written is ever visible, publishing is one rename, one writer per DATA."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wmf import store
from wmf.layout import MANIFEST


def _build(root: Path, key: str, text: str) -> Path:
    with store.building(root, key) as tmp:
        (tmp / "table.txt").write_text(text)
        store.write_json(tmp / MANIFEST, {"key": key})
    return root / key


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), store.building(tmp_path / "stage", "k1") as tmp:
        (tmp / "table.txt").write_text("half")
        raise RuntimeError("boom")
    assert list((tmp_path / "stage").iterdir()) == []


def test_build_without_manifest_is_not_published(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="manifest"), store.building(tmp_path / "stage", "k1") as tmp:
        (tmp / "table.txt").write_text("no manifest")
    assert not store.is_complete(tmp_path / "stage" / "k1")
    assert list((tmp_path / "stage").iterdir()) == []


def test_publish_switches_latest_and_prunes(tmp_path: Path) -> None:
    root = tmp_path / "stage"
    for i in range(4):
        _build(root, f"k{i}", str(i))
        store.publish(root, f"k{i}", keep=2)
        assert (store.latest(root) / "table.txt").read_text() == str(i)
    kept = sorted(p.name for p in root.iterdir() if not p.is_symlink())
    assert kept == ["k2", "k3"]


def test_publish_keeps_the_outputs_it_protects(tmp_path: Path) -> None:
    root = tmp_path / "stage"
    for i in range(3):
        _build(root, f"k{i}", str(i))
        store.publish(root, f"k{i}", keep=1, protect=["k0"])
    assert sorted(p.name for p in root.iterdir() if not p.is_symlink()) == ["k0", "k2"]


def test_republishing_an_old_output_protects_it(tmp_path: Path) -> None:
    root = tmp_path / "stage"
    for key in ("a", "b"):
        _build(root, key, key)
        store.publish(root, key, keep=1)
    _build(root, "a", "a")
    store.publish(root, "a", keep=1)
    assert store.latest(root).name == "a"
    assert store.latest(tmp_path / "other") is None


def test_second_writer_is_refused(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from wmf import store\n"
            f"with store.exclusive(Path({str(tmp_path)!r})):\n"
            "    print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(store.DataLockedError, match="another wmf run"), store.exclusive(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with store.exclusive(tmp_path):  # a killed holder leaves no stale lock
        pass


def test_write_json_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    store.write_json(target, {"a": 1})
    store.write_json(target, {"a": 2})
    assert store.read_json(target) == {"a": 2}
    assert os.listdir(tmp_path) == ["m.json"]
