"""Content digests of every published table, to prove that changed code writes the same tables.

A file's bytes are no proof: Parquet files carry a creation time and run id in their metadata,
and the same rows can be laid out in other row groups or compressed otherwise. So each table
is digested by its *content*: rows, schema and the bytes of its decoded columns.

    python benchmarks/table_digests.py --data DATA [--out FILE]
    python benchmarks/table_digests.py --compare BEFORE.json AFTER.json   # exit 1 on a difference
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from safetensors import safe_open
from safetensors.numpy import load_file

STAGES = ("ingest", "index", "train", "exports")
# JSON fields that change from run to run whatever the code: wall times, dates, run ids.
VOLATILE = {"created_at", "today", "seconds", "peak_rss_gb", "run_id"}
INFO_ONLY = {"file_sha256"}  # reported, never compared: the bytes include the volatile metadata
INDEX = re.compile(r"\[\d+\]")  # list positions, collapsed in the list of ignored fields


class _HashSink:
    """A write-only file that hashes what it is given, so a table's IPC stream is never held whole."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.closed = False

    def write(self, data: Any) -> int:
        self.hash.update(data)
        return len(memoryview(data))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _has_nulls(array: pa.Array) -> bool:
    if array.null_count:
        return True
    if pa.types.is_struct(array.type):
        return any(_has_nulls(array.field(i)) for i in range(array.type.num_fields))
    return pa.types.is_nested(array.type) and _has_nulls(array.values)


def _canonical(column: pa.ChunkedArray) -> pa.Array:
    """One contiguous array whose bytes depend on its values alone. The bytes under a null are
    undefined and differ with the row groups and the reader, so an array with nulls anywhere is
    rebuilt from its values (builders zero them); dictionaries are decoded (their order is the
    writer's) and booleans widened to bytes (a bitmap's trailing bits are undefined too)."""
    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_boolean(array.type):
        array = array.cast(pa.uint8())
    return pa.array(array.to_pylist(), array.type) if _has_nulls(array) else array


def table_sha256(table: pa.Table) -> str:
    """SHA-256 of the table's canonical columns as one Arrow IPC stream without metadata, so
    row groups, compression, page checksums and file metadata do not count. The IPC writer
    omits the validity bitmap of a column without nulls, so whether the reader made one does not."""
    columns = [_canonical(column) for column in table.columns]
    canonical = pa.Table.from_arrays(columns, names=table.column_names)
    sink = _HashSink()
    with pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), canonical.schema) as writer:
        writer.write_table(canonical)
    return sink.hash.hexdigest()


def digest_file(path: Path) -> dict[str, Any]:
    """What a comparison needs of one file, by kind."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        return {
            "rows": table.num_rows,
            "schema": str(table.schema.remove_metadata()),
            "content_sha256": table_sha256(table.replace_schema_metadata(None)),
            "metadata_keys": sorted(k.decode() for k in (table.schema.metadata or {})),
            "file_sha256": file_sha256(path),
        }
    if path.suffix == ".npz":
        with np.load(path) as npz:
            return {name: _array_digest(npz[name]) for name in sorted(npz.files)}
    if path.suffix == ".safetensors":
        with safe_open(str(path), "np") as f:
            metadata = f.metadata()
        tensors = load_file(path)
        return {"tensors": {k: _array_digest(v) for k, v in sorted(tensors.items())}, "metadata": metadata}
    if path.name == "manifest.json":
        return {"listed": True}
    if path.suffix == ".json":
        return {"json": json.loads(path.read_text())}
    return {"sha256": file_sha256(path)}


def _array_digest(array: np.ndarray) -> dict[str, Any]:
    return {"dtype": str(array.dtype), "shape": list(array.shape), "sha256": array_sha256(array)}


def digest_data(data: Path) -> dict[str, Any]:
    """Every file of every stage's published output (DATA/<stage>/latest, the link followed)."""
    stages: dict[str, Any] = {}
    for stage in STAGES:
        latest = data / stage / "latest"
        if latest.is_dir():
            files = sorted(p for p in latest.resolve().iterdir() if p.is_file())
            stages[stage] = {"key": latest.resolve().name, "files": {p.name: digest_file(p) for p in files}}
    return {"data": str(data.resolve()), "stages": stages}


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value
    return out


def _volatile(path: str, value: Any, data_dirs: tuple[str, ...]) -> bool:
    """Whether a leaf is expected to differ between two runs of the same code: it or a field
    above it is volatile by name, or it is a path under either DATA folder."""
    for name in re.split(r"[.\[\]]", path):
        if name in VOLATILE or name in INFO_ONLY or name.endswith("_seconds"):
            return True
    return isinstance(value, str) and any(d in value for d in data_dirs)


def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
    """Print per stage and file whether the digests agree; 0 when all that matters does."""
    data_dirs = (a["data"], b["data"])
    ignored: dict[str, bool] = {}  # field (list positions collapsed) -> differs somewhere
    failed = False
    for stage in sorted(
        set(a["stages"]) | set(b["stages"]),
        key=lambda s: (STAGES.index(s) if s in STAGES else len(STAGES), s),
    ):
        fa = a["stages"].get(stage, {}).get("files", {})
        fb = b["stages"].get(stage, {}).get("files", {})
        for name in sorted(set(fa) | set(fb)):
            if name not in fa or name not in fb:
                print(f"{stage}/{name}: DIFFERS: only in {'A' if name in fa else 'B'}")
                failed = True
                continue
            la, lb = _flatten(fa[name], "", {}), _flatten(fb[name], "", {})
            diffs = []
            for leaf in sorted(set(la) | set(lb)):
                va, vb = la.get(leaf, "<absent>"), lb.get(leaf, "<absent>")
                if _volatile(leaf, va, data_dirs) or _volatile(leaf, vb, data_dirs):
                    field = f"{stage}/{name}: {INDEX.sub('[*]', leaf)}"
                    ignored[field] = ignored.get(field, False) or va != vb
                elif va != vb:
                    diffs.append(f"    {leaf}: {va!r} != {vb!r}")
            print(f"{stage}/{name}: {'DIFFERS' if diffs else 'same'}")
            for line in diffs:
                print(line)
            failed = failed or bool(diffs)
    print("ignored as volatile (paths under DATA, timings, dates, run ids; file bytes are information):")
    for field, differs in sorted(ignored.items()):
        print(f"  {field}{' (differs)' if differs else ' (same)'}")
    print("RESULT:", "DIFFERENT" if failed else "SAME")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--data", type=Path, help="the pipeline's DATA folder")
    mode.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"))
    parser.add_argument("--out", type=Path, help="write the digests here instead of stdout")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*(json.loads(p.read_text()) for p in args.compare))
    text = json.dumps(digest_data(args.data), indent=1, sort_keys=True) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
